package backend

// The kernel backends exist on Linux. Each constructor returns its concrete
// type; the conversion to Backend happens only on success, so that a failed
// start is a nil interface, not a typed nil. workers sizes the pool their
// stages use (stager.workers), which starts only when first needed.

func startUring(slots int, cfg Config) (Backend, error) {
	u, err := newUring(slots, cfg)
	if err != nil {
		return nil, err
	}
	u.stage.workers = cfg.Workers
	return u, nil
}

func startKaio(slots, workers int) (Backend, error) {
	k, err := newKaio(slots)
	if err != nil {
		return nil, err
	}
	k.stage.workers = workers
	return k, nil
}

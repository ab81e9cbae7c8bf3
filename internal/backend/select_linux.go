package backend

// The kernel backends exist on Linux. Each constructor returns its concrete
// type; the conversion to Backend happens only on success, so that a failed
// start is a nil interface, not a typed nil.

func startUring(slots int) (Backend, error) {
	u, err := newUring(slots)
	if err != nil {
		return nil, err
	}
	return u, nil
}

func startKaio(slots int) (Backend, error) {
	k, err := newKaio(slots)
	if err != nil {
		return nil, err
	}
	return k, nil
}

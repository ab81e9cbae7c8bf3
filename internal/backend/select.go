package backend

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// EnvVar names the environment variable that chooses the backend when the
// caller's option is empty.
const EnvVar = "URINGAIO_BACKEND"

// Names are the valid backend names.
var Names = []string{"auto", "uring", "kaio"}

// Open starts the backend that name asks for, sized for slots outstanding
// requests. An empty name defers to URINGAIO_BACKEND, and an empty or unset
// variable means "auto": io_uring when it starts and supports every op the
// library needs (IORING_REGISTER_PROBE), else classic AIO. It returns what it
// tried, with each refusal's reason, in order.
//
// A named backend that cannot start is an error naming it and the reason, and
// matching ErrNotSupported; there is no silent fallback. An unknown name is an
// error (matching EINVAL) that lists the valid ones.
func Open(name string, slots int) (Backend, []Probe, error) {
	source := "Options.Backend"
	if name == "" {
		name, source = os.Getenv(EnvVar), EnvVar
	}
	switch name {
	case "", "auto":
		return openAuto(slots)
	case "uring", "kaio":
		b, err := start(name, slots)
		if err != nil {
			return nil, []Probe{{name, err}}, fmt.Errorf("uringaio: backend %q (from %s) cannot run: %w", name, source, err)
		}
		return b, []Probe{{name, nil}}, nil
	}
	return nil, nil, fmt.Errorf("uringaio: unknown backend %q in %s; valid values: \"\", auto, uring, kaio: %w",
		name, source, unix.EINVAL)
}

func start(name string, slots int) (Backend, error) {
	if name == "uring" {
		u, err := newUring(slots)
		if err != nil {
			return nil, err
		}
		return u, nil
	}
	k, err := newKaio(slots)
	if err != nil {
		return nil, err
	}
	return k, nil
}

func openAuto(slots int) (Backend, []Probe, error) {
	var probes []Probe
	var errs []error
	for _, name := range []string{"uring", "kaio"} {
		b, err := start(name, slots)
		if err == nil {
			return b, append(probes, Probe{name, nil}), nil
		}
		probes = append(probes, Probe{name, err})
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	return nil, probes, fmt.Errorf("uringaio: no backend can run here: %w", errors.Join(errs...))
}

package seal

import "errors"

var (
	// ErrUnknownKey is returned when a value was sealed by a key the
	// keyring does not hold; the error names the key id it needs.
	ErrUnknownKey = errors.New("sealed by an unknown key")

	// ErrTampered is returned when a sealed value does not open under its
	// key: it was altered, or moved to another app or key.
	ErrTampered = errors.New("sealed value does not open: altered or moved")

	// ErrMalformed is returned when a value starts as a sealed one but is
	// not in the envelope's form.
	ErrMalformed = errors.New("malformed sealed value")
)

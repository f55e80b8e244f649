package testbed

import "errors"

// ErrInput marks bad input: an unknown service, a knob's bad value, an
// invalid or missing topology. Nothing was started. Test with errors.Is.
var ErrInput = errors.New("bad input")

// InputError is bad input (errors.Is(err, ErrInput) holds for it).
type InputError struct{ Err error }

func (e *InputError) Error() string        { return e.Err.Error() }
func (e *InputError) Unwrap() error        { return e.Err }
func (e *InputError) Is(target error) bool { return target == ErrInput }

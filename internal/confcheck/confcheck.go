// Package confcheck collects configuration validation errors that name the
// offending key, so that the file loader can point the operator at the line.
//
// Each package owns a Config struct with a Validate method; Validate reports
// problems through an Errors value instead of stopping at the first one, because
// an operator fixing a file wants the whole list at once.
package confcheck

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError is one problem with one configuration key.
type FieldError struct {
	// Key is the dotted TOML path of the key, e.g. "dataplane.burst" or
	// "port[1].mtu". Array indexes are zero-based.
	Key string
	// Msg says what is wrong and what to change.
	Msg string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Key + ": " + e.Msg }

// Errors accumulates FieldErrors under a key prefix.
type Errors struct {
	prefix string
	list   *[]*FieldError
}

// New returns an empty collector whose keys start with prefix (which may be
// empty for the file's top level).
func New(prefix string) Errors {
	return Errors{prefix: prefix, list: new([]*FieldError)}
}

// Sub returns a collector that shares the list and prefixes keys with name.
func (e Errors) Sub(name string) Errors {
	return Errors{prefix: join(e.prefix, name), list: e.list}
}

// Index returns a collector for element i of the array name.
func (e Errors) Index(name string, i int) Errors {
	return Errors{prefix: join(e.prefix, fmt.Sprintf("%s[%d]", name, i)), list: e.list}
}

// Addf records a problem with key.
func (e Errors) Addf(key, format string, args ...any) {
	*e.list = append(*e.list, &FieldError{Key: join(e.prefix, key), Msg: fmt.Sprintf(format, args...)})
}

// Err returns nil when nothing was recorded, otherwise an error whose
// errors.As target *FieldError finds the first problem and whose Unwrap
// exposes them all.
func (e Errors) Err() error {
	if len(*e.list) == 0 {
		return nil
	}
	errs := make([]error, len(*e.list))
	for i, fe := range *e.list {
		errs[i] = fe
	}
	return errors.Join(errs...)
}

// List returns the recorded problems.
func (e Errors) List() []*FieldError { return *e.list }

func join(prefix, key string) string {
	switch {
	case prefix == "":
		return key
	case key == "":
		return prefix
	case strings.HasPrefix(key, "["):
		return prefix + key
	}
	return prefix + "." + key
}

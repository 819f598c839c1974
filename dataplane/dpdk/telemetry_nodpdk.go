//go:build !linux || !cgo

package dpdk

// RegisterTelemetry returns ErrNoDPDK.
func (e *EAL) RegisterTelemetry(cmd, help string, fn TelemetryFunc) error { return ErrNoDPDK }

// TelemetrySocket returns "".
func (e *EAL) TelemetrySocket() string { return "" }

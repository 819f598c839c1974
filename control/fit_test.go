package control

import (
	"github.com/poolrelay/poolrelay/dataplane/counters"
	"github.com/poolrelay/poolrelay/dataplane/relay"
	"github.com/poolrelay/poolrelay/pool/transport"
)

// The data plane's types plug into the core without glue.
var (
	_ DataPlane        = (*relay.Tables)(nil)
	_ sentCounter      = (*relay.Tables)(nil)
	_ Counters         = (*counters.Set)(nil)
	_ transport.Device = (*relay.Engine)(nil)
)

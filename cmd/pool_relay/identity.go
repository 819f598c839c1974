package main

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	iofs "io/fs"
	"os"

	"github.com/poolrelay/poolrelay/crypto/address"
	"github.com/poolrelay/poolrelay/crypto/identity"
)

func init() {
	register("keygen", command{
		summary: "create a new identity key (keygen [--out FILE] | [--config FILE])",
		run:     runKeygen,
	})
	register("identity", command{
		summary: "print the relay's public identity and POOL address",
		run:     runIdentity,
	})
}

// runKeygen writes a new Ed25519 identity key, mode 0600, refusing to replace
// an existing one: losing a relay's key loses every account its peers keep
// about it, so replacing one must be a deliberate rm first.
func runKeygen(e *env, args []string) error {
	fs := newFlags(e, "keygen", "keygen [--out FILE | --config FILE]\n\n"+
		"Creates a new Ed25519 identity key (with its bound X25519 key) with mode 0600 and prints\n"+
		"its public half. An existing key file is never replaced. The relay also creates its key\n"+
		"on first start; keygen is for provisioning it beforehand.")
	out := fs.String("out", "", "key file to create (default: [node] identity_file of --config)")
	cfgPath := fs.String("config", "", "configuration naming the key file (default: the embedded default)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	path := *out
	if path == "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		path = cfg.Node.IdentityPath()
	}
	if _, err := os.Stat(path); err == nil {
		return fmt.Errorf("keygen: %s exists; refusing to replace an identity key", path)
	} else if !errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("keygen: %w", err)
	}
	id, created, err := identity.LoadOrCreate(path, rand.Reader)
	if err != nil {
		return fmt.Errorf("keygen: %w", err)
	}
	if !created {
		return fmt.Errorf("keygen: %s appeared while creating it; left alone", path)
	}
	fmt.Fprintf(e.stdout, "created %s\n", path)
	fmt.Fprintf(e.stdout, "identity %s\n", id.PublicKey())
	return nil
}

// identityInfo is what `pool_relay identity --json` prints.
type identityInfo struct {
	Identity string `json:"identity"`
	X25519   string `json:"x25519"`
	Address  string `json:"address"`
	File     string `json:"file"`
}

func runIdentity(e *env, args []string) error {
	fs := newFlags(e, "identity", "identity [--config FILE | --key FILE] [--org N] [--segment N] [--node] [--json]\n\n"+
		"Prints the public identity (Ed25519, 64 hex digits: what [control] listed_keys takes),\n"+
		"the X25519 key bound to it, and the POOL address for the given organisation and segment.\n"+
		"Reads the key file only; it never creates one.")
	cfgPath := fs.String("config", "", "configuration naming the key file (default: the embedded default)")
	keyPath := fs.String("key", "", "key file (overrides --config)")
	org := fs.Uint("org", 0, "organisation id of the address")
	seg := fs.Uint("segment", 0, "segment id of the address")
	node := fs.Bool("node", false, "print an end node's address instead of a relay's")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *org > 0xffffffff || *seg > 0xffff {
		return usagef("--org must fit 32 bits and --segment 16 bits")
	}
	path := *keyPath
	if path == "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		path = cfg.Node.IdentityPath()
	}
	id, err := identity.Load(path)
	if errors.Is(err, iofs.ErrNotExist) {
		return fmt.Errorf("no identity key at %s: the relay creates it on its first start, pool_relay keygen --out FILE provisions one; --key or --config names another", path)
	}
	if err != nil {
		return err // identity.Load's errors name their package
	}
	t := address.TypeRelay
	if *node {
		t = address.TypeNode
	}
	pub := id.PublicKey()
	x := id.StaticPublic()
	info := identityInfo{
		Identity: pub.String(),
		X25519:   hex.EncodeToString(x[:]),
		Address:  address.New(t, uint32(*org), uint16(*seg), pub).String(),
		File:     path,
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(info)
	}
	fmt.Fprintf(e.stdout, "Identity: %s\nX25519:   %s\nAddress:  %s\nKey file: %s\n", info.Identity, info.X25519, info.Address, info.File)
	return nil
}

// Package poolrelay is the root of the POOL relay appliance. It holds no code,
// only the repository guard tests (formatting, package docs, import rules);
// the relay itself is in cmd/, dataplane/, crypto/, sched/, ledger/ and ctl/.
package poolrelay

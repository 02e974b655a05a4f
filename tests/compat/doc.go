// Package compat is ztnc's compatibility matrix: real servers driven by their real clients,
// each checked on the data that went between them, in several placements — on the host, across
// network namespaces, and under ztnc-run. `make compat` runs it and writes
// docs/compatibility.md; `go test ./tests/compat/` runs it as a test (-short: a fast subset in
// the best placement).
//
// An Entry is data plus a check: the programs it needs and how to ask their versions, and a Run
// function that starts the server on c.Server, drives it with the client on c.Client and fails
// with c.Fatalf when the data is wrong. Servers get their own configuration in the entry's
// directory and a fresh port (c.Port), bind to c.Server.Addr and see clients connect from
// c.Client.Addr. An entry that fails in a placement for a known reason is marked with Broken
// (issue number and one line); it is then reported, not failed.
//
// A Placement decides where the two sides run. Each side is an agent (package agent) started
// behind the placement's wrapper — nothing, `ip netns exec`, `ztnc-run --local …` or
// `ztnc-run --nwid …` — so that every program an entry starts inherits that side's network,
// and the entry code is the same everywhere. The ztnc placements turn on by themselves when
// `ztnc-run --help` (built from cmd/ztnc-run, or $ZTNC_RUN) shows their flags and a probe
// works; entries needing UDP, ICMP or IPv6 stay pending until probes show ztnc-run has them.
//
// Test flags (after -args): -compat.placements (all, best, or host,netns,local,zt),
// -compat.report FILE, -compat.strict (missing programs fail; on when $CI is set),
// -compat.parallel N. The matrix needs root: servers switch to a throw-away account that the
// run creates (ztnc-compat-PID) and removes.
package compat

package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ztnc/ztnc/tests/lab"
)

// results holds every sample: samples[measurement][pair] is one value slice per run.
type results struct {
	pairs   []pair
	ms      []measurement
	samples [][][][]float64
	errs    [][][]string
	notes   []string
	startup []*startup
}

func newResults(ps []pair, ms []measurement) *results {
	r := &results{pairs: ps, ms: ms, startup: make([]*startup, len(ps))}
	r.samples = make([][][][]float64, len(ms))
	r.errs = make([][][]string, len(ms))
	for i := range ms {
		r.samples[i] = make([][][]float64, len(ps))
		r.errs[i] = make([][]string, len(ps))
	}
	return r
}

func (r *results) add(mi, pi int, vals []float64, note string, err error) {
	label := r.pairs[pi].name + ", " + r.ms[mi].rows[0].name
	if err != nil {
		r.errs[mi][pi] = append(r.errs[mi][pi], err.Error())
		fmt.Fprintf(os.Stderr, "matrix: %s: %v\n", label, err)
		return
	}
	if note != "" {
		r.notes = append(r.notes, label+": "+note)
	}
	r.samples[mi][pi] = append(r.samples[mi][pi], vals)
}

// failures returns a note per pair and measurement that failed: how often, and the last error
// (its start names the command, its end is where programs print why they failed).
func (r *results) failures() []string {
	var notes []string
	for mi, m := range r.ms {
		for pi, p := range r.pairs {
			errs := r.errs[mi][pi]
			if len(errs) == 0 {
				continue
			}
			notes = append(notes, fmt.Sprintf("%s, %s: failed in %d of %d runs: %s", p.name, m.rows[0].name,
				len(errs), len(errs)+len(r.samples[mi][pi]), elide(errs[len(errs)-1], 160, 240)))
		}
	}
	return notes
}

// elide keeps the first head and the last tail bytes of s (whitespace collapsed).
func elide(s string, head, tail int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= head+tail {
		return s
	}
	h, t := head, len(s)-tail
	for !utf8.ValidString(s[:h]) {
		h--
	}
	for !utf8.ValidString(s[t:]) {
		t++
	}
	return s[:h] + " … " + s[t:]
}

// cell is one table entry: the median over runs (NaN when there is none) and the range. A
// value that could not be had in a run (NaN: no CPU account) does not count.
type cell struct {
	v, lo, hi float64
	n         int
}

func (r *results) cell(mi, pi, row int) cell {
	var vs []float64
	for _, s := range r.samples[mi][pi] {
		if !math.IsNaN(s[row]) {
			vs = append(vs, s[row])
		}
	}
	if len(vs) == 0 {
		return cell{v: math.NaN()}
	}
	c := cell{v: median(vs), lo: vs[0], hi: vs[0], n: len(vs)}
	for _, v := range vs {
		c.lo, c.hi = math.Min(c.lo, v), math.Max(c.hi, v)
	}
	return c
}

func (r *results) markdown(env *machine, d time.Duration, runs int) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }

	w("## Benchmark matrix, %s\n\n", env.start.Format("2006-01-02 15:04 MST"))
	w("Command: `%s` (`make bench-matrix BENCH_MATRIX_FLAGS=...` builds bin/bench-matrix from bench/matrix and runs it)  \n", lab.Quote(os.Args))
	w("Machine: Linux %s, %d × %s  \n", env.kernel, env.cpus, env.cpu)
	w("Load: average %s before, %s after; %.0f%% of all CPUs busy in the second before start (other users' jobs)  \n",
		env.loadBefore, env.loadAfter, 100*env.busyBefore)
	w("Tools: %s  \n", strings.Join(env.tools, "; "))
	w("Each iperf3/wrk run lasts %v; %d run(s) per metric and pair, interleaved across pairs; median shown", d, runs)
	if runs > 1 {
		w(" with [min–max]")
	}
	w(".  \nEvery endpoint's namespace has %s = %s.\n\n", portRange[0], portRange[1])

	// Header: one column per pair, then a ratio for every later pair over every earlier one
	// that is a reference (ztnc-self over ztnc would only show how their roots and controllers differ).
	type ratio struct{ num, den int }
	var ratios []ratio
	for i := range r.pairs {
		for j := 0; j < i; j++ {
			if r.pairs[j].reference {
				ratios = append(ratios, ratio{i, j})
			}
		}
	}
	w("| metric | unit |")
	for _, p := range r.pairs {
		w(" %s |", p.name)
	}
	for _, q := range ratios {
		w(" %s/%s |", r.pairs[q.num].name, r.pairs[q.den].name)
	}
	w("\n|---|---|")
	for range len(r.pairs) + len(ratios) {
		w("---:|")
	}
	w("\n")

	line := func(name, unit string, cells []cell) {
		w("| %s | %s |", name, unit)
		for _, c := range cells {
			w(" %s |", c.format(runs))
		}
		for _, q := range ratios {
			w(" %s |", formatRatio(cells[q.num].v, cells[q.den].v))
		}
		w("\n")
	}
	for mi, m := range r.ms {
		for ri, row := range m.allRows() {
			cells := make([]cell, len(r.pairs))
			for pi := range r.pairs {
				cells[pi] = r.cell(mi, pi, ri)
				if cells[pi].n == 0 && len(r.errs[mi][pi]) > 0 {
					cells[pi].n = -1 // failed
				}
			}
			unit := row.unit
			if row.lowerBetter {
				unit += " ↓"
			}
			line(row.name, unit, cells)
		}
	}
	startRow := func(name string, get func(*startup) []time.Duration) {
		cells := make([]cell, len(r.pairs))
		measured := false
		for pi, st := range r.startup {
			cells[pi] = cell{v: math.NaN()}
			if st == nil {
				continue
			}
			var vs []float64
			for _, d := range get(st) {
				vs = append(vs, d.Seconds())
			}
			if len(vs) > 0 {
				measured = true
				cells[pi] = cell{v: median(vs), lo: slices.Min(vs), hi: slices.Max(vs), n: len(vs)}
			}
		}
		if measured {
			line(name, "s ↓", cells)
		}
	}
	if slices.ContainsFunc(r.startup, func(s *startup) bool { return s != nil }) {
		startRow("B cold start → network OK", func(s *startup) []time.Duration { return s.toOK })
		startRow("B cold start → first HTTP byte from A", func(s *startup) []time.Duration { return s.toFirstByte })
		startRow("B restart, cached home → network OK", func(s *startup) []time.Duration { return s.cachedToOK })
		startRow("B restart, cached home → first HTTP byte from A", func(s *startup) []time.Duration { return s.cachedToFirstByte })
	}

	w("\n↓: lower is better. Ratios are column over column (for ↓ rows a ratio above 1 means slower or costlier).\n")
	w("CPU rows: CPU time of all the pair's processes (its cgroup: servers, clients, member node processes, " +
		"root and controller, and the kernel work charged to them) while the client ran, per unit of work " +
		"(the rate above times the run's length).\n\n")
	w("Pairs (A runs the servers, B the clients):\n")
	for _, p := range r.pairs {
		w("- %s: %s", p.name, p.about)
		if p.bin != nil {
			w(" (binary %s)", *p.bin)
		}
		w("\n")
	}
	w("\nClient commands on B (A = A's address on the pair's network):\n")
	for _, m := range r.ms {
		w("- %s: `%s`", m.rows[0].name, lab.Quote(m.command("A")))
		switch m.server {
		case "iperf3":
			w(" against `iperf3 -s -B A -p %d --forceflush`", iperfPort)
		case "nginx":
			w(" against nginx (2 workers, access log off) serving a %d-byte file", len(indexHTML))
		}
		w("\n")
	}
	w("- cold start: B's node process starts with identity and network pre-provisioned and pre-authorized; " +
		"network OK = status OK with its IPv4 address on the interface; first byte = first successful " +
		"`curl` from B of a 6-byte file served by busybox httpd on A, retried every 50 ms\n")
	w("- cold start of the ztnc-self pairs (median of -startup-runs, starts 1.5 s apart): `ztnc-run --nwid N --home H -- curl URL` on B " +
		"with H holding only identity and planet (fresh) or also the cached config and peers of the previous " +
		"run (cached); network OK = ztnc-run's status=OK line on its stderr, first byte = the first byte of " +
		"curl's output, both timed from the start of ztnc-run\n")
	if notes := append(r.failures(), r.notes...); len(notes) > 0 {
		w("\nNotes:\n")
		for _, n := range notes {
			w("- %s\n", n)
		}
	}
	return b.String()
}

func (c cell) format(runs int) string {
	switch {
	case c.n < 0:
		return "failed"
	case math.IsNaN(c.v):
		return "—"
	case runs > 1 && c.n > 1:
		return fmt.Sprintf("%s [%s–%s]", number(c.v), number(c.lo), number(c.hi))
	}
	return number(c.v)
}

// number prints three significant digits, without exponents for large values.
func number(v float64) string {
	switch a := math.Abs(v); {
	case a >= 100:
		return fmt.Sprintf("%.0f", v)
	case a >= 10:
		return fmt.Sprintf("%.1f", v)
	case a >= 1:
		return fmt.Sprintf("%.2f", v)
	}
	return fmt.Sprintf("%.3g", v)
}

func formatRatio(num, den float64) string {
	if math.IsNaN(num) || math.IsNaN(den) || den == 0 {
		return "—"
	}
	return number(num/den) + "×"
}

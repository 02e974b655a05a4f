package main

import (
	"bytes"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/ztnc/ztnc/netstack"
	"github.com/ztnc/ztnc/supervisor"
)

// promWriter writes the Prometheus text exposition format (version 0.0.4).
type promWriter struct {
	b bytes.Buffer
}

// family starts a metric family.
func (p *promWriter) family(name, typ, help string) {
	p.b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
}

// sample writes one sample; labels are name, value pairs.
func (p *promWriter) sample(name string, v float64, labels ...string) {
	p.b.WriteString(name)
	if len(labels) > 0 {
		p.b.WriteByte('{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				p.b.WriteByte(',')
			}
			p.b.WriteString(labels[i] + `="` + labelEscaper.Replace(labels[i+1]) + `"`)
		}
		p.b.WriteByte('}')
	}
	p.b.WriteByte(' ')
	p.b.WriteString(strconv.FormatFloat(v, 'g', -1, 64))
	p.b.WriteByte('\n')
}

var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// counterMap writes a family with one sample per key of m (sorted), labelled key=... after
// the given labels.
func (p *promWriter) counterMap(name string, m map[string]uint64, key string, labels ...string) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		p.sample(name, float64(m[k]), append(slices.Clone(labels), key, k)...)
	}
}

// stackFamily writes a family with one sample per network: the value of its stack's
// counters that value picks.
func (p *promWriter) stackFamily(nets []attachment, name, typ, help string, value func(netstack.Counters) uint64) {
	p.family(name, typ, help)
	for _, a := range nets {
		p.sample(name, float64(value(a.stack.Counters())), "nwid", netLabel(a))
	}
}

func boolValue(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// metrics renders the instance's counters.
func (in *instance) metrics() []byte {
	node, nets, progs, pubs := in.snapshot()
	var p promWriter

	if node != nil {
		c := node.Counters()
		p.family("ztnc_node_online", "gauge", "1 when a root has been heard from recently.")
		p.sample("ztnc_node_online", boolValue(node.Online()), "address", node.Address().String())
		p.family("ztnc_node_peers", "gauge", "Peers the node knows.")
		p.sample("ztnc_node_peers", float64(len(node.Peers())))
		p.family("ztnc_node_packets_total", "counter", "UDP datagrams of the ZeroTier node.")
		p.sample("ztnc_node_packets_total", float64(c.PacketsIn), "direction", "in")
		p.sample("ztnc_node_packets_total", float64(c.PacketsOut), "direction", "out")
		p.family("ztnc_node_bytes_total", "counter", "Bytes of the node's UDP datagrams.")
		p.sample("ztnc_node_bytes_total", float64(c.BytesIn), "direction", "in")
		p.sample("ztnc_node_bytes_total", float64(c.BytesOut), "direction", "out")
		p.family("ztnc_node_drops_total", "counter", "Datagrams the node dropped, by reason.")
		p.counterMap("ztnc_node_drops_total", c.Drops, "reason")
	}

	p.family("ztnc_network_ready", "gauge", "1 when the network is OK with an address.")
	for _, a := range nets {
		p.sample("ztnc_network_ready", boolValue(a.nw == nil || ready(a.nw.State())), "nwid", netLabel(a))
	}
	p.family("ztnc_network_frames_total", "counter", "Ethernet frames between the node and the network.")
	for _, a := range nets {
		if a.nw != nil {
			c := a.nw.Counters()
			p.sample("ztnc_network_frames_total", float64(c.PacketsIn), "nwid", netLabel(a), "direction", "in")
			p.sample("ztnc_network_frames_total", float64(c.PacketsOut), "nwid", netLabel(a), "direction", "out")
		}
	}
	p.family("ztnc_network_bytes_total", "counter", "Bytes of those frames.")
	for _, a := range nets {
		if a.nw != nil {
			c := a.nw.Counters()
			p.sample("ztnc_network_bytes_total", float64(c.BytesIn), "nwid", netLabel(a), "direction", "in")
			p.sample("ztnc_network_bytes_total", float64(c.BytesOut), "nwid", netLabel(a), "direction", "out")
		}
	}
	p.family("ztnc_network_drops_total", "counter", "Frames the node dropped on the network, by reason.")
	for _, a := range nets {
		if a.nw != nil {
			p.counterMap("ztnc_network_drops_total", a.nw.Counters().Drops, "reason", "nwid", netLabel(a))
		}
	}

	p.family("ztnc_stack_frames_total", "counter", "Ethernet frames received and sent by the network's TCP/IP stack.")
	for _, a := range nets {
		c := a.stack.Counters()
		p.sample("ztnc_stack_frames_total", float64(c.FramesIn), "nwid", netLabel(a), "direction", "in")
		p.sample("ztnc_stack_frames_total", float64(c.FramesOut), "nwid", netLabel(a), "direction", "out")
	}
	p.family("ztnc_stack_bytes_total", "counter", "Bytes of those frames.")
	for _, a := range nets {
		c := a.stack.Counters()
		p.sample("ztnc_stack_bytes_total", float64(c.BytesIn), "nwid", netLabel(a), "direction", "in")
		p.sample("ztnc_stack_bytes_total", float64(c.BytesOut), "nwid", netLabel(a), "direction", "out")
	}
	p.family("ztnc_stack_drops_total", "counter", "Frames and datagrams the stack dropped, by reason.")
	for _, a := range nets {
		p.counterMap("ztnc_stack_drops_total", stackDrops(a.stack.Counters()), "reason", "nwid", netLabel(a))
	}
	p.stackFamily(nets, "ztnc_stack_tcp_retransmits_total", "counter", "TCP segments retransmitted.", func(c netstack.Counters) uint64 { return c.TCPRetransmits })
	p.family("ztnc_stack_delayed_acks_total", "counter", "Pure ACKs the link held back: merged into a later segment, or sent when the delay ran out.")
	for _, a := range nets {
		c := a.stack.Counters()
		p.sample("ztnc_stack_delayed_acks_total", float64(c.AcksMerged), "nwid", netLabel(a), "outcome", "merged")
		p.sample("ztnc_stack_delayed_acks_total", float64(c.AcksExpired), "nwid", netLabel(a), "outcome", "expired")
	}
	p.stackFamily(nets, "ztnc_stack_parked_loops", "gauge", "Loops of idle spliced sockets (TCP, UDP, ping) parked without a goroutine (two per socket).", func(c netstack.Counters) uint64 { return c.LoopsParked })
	p.stackFamily(nets, "ztnc_stack_running_loops", "gauge", "Loops of spliced sockets on a goroutine (running, or waiting on one); past 1024 they park at once.", func(c netstack.Counters) uint64 { return c.LoopsRunning })
	p.stackFamily(nets, "ztnc_stack_parks_total", "counter", "Times a loop of a spliced socket parked.", func(c netstack.Counters) uint64 { return c.Parks })
	p.stackFamily(nets, "ztnc_stack_park_failures_total", "counter", "Parks the stack's epoll set refused: the loop waits on its goroutine instead.", func(c netstack.Counters) uint64 { return c.ParkFailures })

	sup := supervisorTotals(progs)
	p.family("ztnc_programs", "gauge", "Supervised programs running.")
	p.sample("ztnc_programs", float64(len(progs)))
	p.family("ztnc_trapped_calls_total", "counter", "Socket system calls trapped, by call.")
	p.counterMap("ztnc_trapped_calls_total", sup.Calls, "call")
	p.family("ztnc_continued_calls_total", "counter", "Trapped calls on descriptors that are not emulated sockets (run by the kernel).")
	p.sample("ztnc_continued_calls_total", float64(sup.Continued))
	p.family("ztnc_failed_calls_total", "counter", "Trapped calls answered with an error, by errno.")
	p.counterMap("ztnc_failed_calls_total", sup.Failed, "errno")
	p.family("ztnc_sockets", "gauge", "Emulated sockets alive.")
	p.sample("ztnc_sockets", float64(sup.Sockets))
	p.family("ztnc_connections_total", "counter", "TCP connections of the programs established (connected or accepted).")
	p.sample("ztnc_connections_total", float64(sup.Connections))
	p.family("ztnc_connections", "gauge", "TCP connections of the programs open.")
	p.sample("ztnc_connections", float64(sup.ActiveConnections))
	p.family("ztnc_splice_failures_total", "counter", "Established connections reset because the stack's proxy refused them.")
	p.sample("ztnc_splice_failures_total", float64(sup.SpliceFailures))
	p.latencyHistogram(progs)

	p.publishMetrics(pubs)
	return p.b.Bytes()
}

// netLabel is the nwid label of a network ("local" for --local).
func netLabel(a attachment) string {
	if a.nw == nil {
		return "local"
	}
	return a.nw.ID().String()
}

// latencyHistogram writes the supervisors' handling-latency histogram (cumulative buckets).
func (p *promWriter) latencyHistogram(progs []*program) {
	const name = "ztnc_notify_handling_seconds"
	bounds := supervisor.LatencyBuckets()
	counts := make([]uint64, len(bounds)+1)
	var sum float64
	for _, pr := range progs {
		st := pr.sup.Stats()
		for i, n := range st.Latency {
			counts[i] += n
		}
		sum += st.LatencySum.Seconds()
	}
	p.family(name, "histogram", "Time from receiving a trapped call's notification to answering it (or handing it to a waiting goroutine).")
	var cum uint64
	for i, b := range bounds {
		cum += counts[i]
		p.sample(name+"_bucket", float64(cum), "le", strconv.FormatFloat(b.Seconds(), 'g', -1, 64))
	}
	cum += counts[len(bounds)]
	p.sample(name+"_bucket", float64(cum), "le", "+Inf")
	p.sample(name+"_sum", sum)
	p.sample(name+"_count", float64(cum))
}

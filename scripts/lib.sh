# shellcheck shell=bash
# Shell functions shared by scripts/demo.sh and scripts/walkthrough.sh (sourced, not run).

# free_port prints a port free on 127.0.0.1 for both UDP and TCP, for a server whose port must
# be known before it starts (a root names its port in the planet it writes). It is taken
# below the kernel's ephemeral range, so that no outgoing connection of another program grabs
# it between this check and the server's bind.
free_port() {
	python3 -c 'import random, socket
lo = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for p in random.sample(range(20000, max(lo, 20001)), min(200, max(lo, 20001) - 20000)):
    try:
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", p))
        t = socket.socket(); t.bind(("127.0.0.1", p))
        print(p); break
    except OSError:
        pass
else:
    raise SystemExit("no free port")'
}

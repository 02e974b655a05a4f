package compat

import (
	"fmt"
	"os"
	"strings"
)

func sshEntry() *Entry {
	const conf = `Port {{port}}
ListenAddress {{addr}}
HostKey {{dir}}/host_ed25519
PidFile {{dir}}/sshd.pid
AuthorizedKeysFile {{dir}}/authorized_keys
AllowUsers {{user}}
PermitRootLogin no
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
LogLevel VERBOSE
Subsystem sftp /usr/lib/openssh/sftp-server
`
	return &Entry{
		Name:     "ssh",
		Program:  "OpenSSH sshd + ssh + sftp",
		Checks:   "sshd on its own port, host key and config; ssh as an unprivileged user runs a command (output checked); sftp puts and gets 1 MiB (sha256 of both copies)",
		Needs:    []string{"/usr/sbin/sshd", "ssh", "sftp", "ssh-keygen"},
		Versions: []Version{versionOf("", `OpenSSH_\S+`, "ssh", "-V")},
		Short:    true,
		Run: func(c *Case) {
			// sshd checks that its privilege-separation directory exists.
			if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
				c.Fatalf("%v", err)
			}
			dir := c.Mkdir("ssh")
			c.Host("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "compat-host", "-f", dir+"/host_ed25519")
			// The user's key belongs to the user: ssh refuses a private key that others own.
			keyDir := c.Mkdir("ssh/user")
			c.HostCmd(Cmd{As: c.User, Argv: []string{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "compat-user", "-f", keyDir + "/id_ed25519"}})
			pub := c.ReadFile("ssh/user/id_ed25519.pub")
			c.WriteFile("ssh/authorized_keys", []byte(pub))
			port := c.Port()
			c.WriteFile("ssh/sshd_config", []byte(fill(conf, "port", port, "addr", c.Server.Addr,
				"dir", dir, "user", c.User.Name)))
			// The client knows the host key in advance and insists on it.
			hostKey := strings.Fields(c.ReadFile("ssh/host_ed25519.pub"))
			c.WriteFile("ssh/user/known_hosts", []byte(fmt.Sprintf("[%s]:%d %s %s\n", c.Server.Addr, port, hostKey[0], hostKey[1])))

			srv := c.Server.Start("sshd", "/usr/sbin/sshd", "-D", "-e", "-f", dir+"/sshd_config")
			srv.WaitTCP(port)

			opts := []string{"-F", "/dev/null", "-i", keyDir + "/id_ed25519",
				"-o", "UserKnownHostsFile=" + keyDir + "/known_hosts", "-o", "StrictHostKeyChecking=yes",
				"-o", "BatchMode=yes", "-o", "ConnectTimeout=30"}
			ssh := append(append([]string{"ssh"}, opts...), "-p", fmt.Sprint(port), c.User.Name+"@"+c.Server.Addr.String(),
				`echo "sum=$((6*7)) user=$(id -un) client=${SSH_CLIENT%% *}"`)
			out := c.Client.RunCmd(Cmd{As: c.User, Argv: ssh})
			c.Equal("ssh command output", out, fmt.Sprintf("sum=42 user=%s client=%s", c.User.Name, c.Client.Addr))

			// sftp as the same user: put a file, get it back.
			_, sum := c.Payload("ssh/user/upload.bin", 1<<20)
			remote := c.Mkdir("ssh/remote")
			batch := c.WriteFile("ssh/user/batch", []byte(fmt.Sprintf("put %s/upload.bin %s/put.bin\nget %s/put.bin %s/download.bin\n",
				keyDir, remote, remote, keyDir)))
			sftp := append(append([]string{"sftp"}, opts...), "-b", batch, "-P", fmt.Sprint(port), c.User.Name+"@"+c.Server.Addr.String())
			c.Client.RunCmd(Cmd{As: c.User, Argv: sftp})
			c.SameFile("file put by sftp (server side)", remote+"/put.bin", sum)
			c.SameFile("file got by sftp", keyDir+"/download.bin", sum)
		},
	}
}

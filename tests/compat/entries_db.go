package compat

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// tableDigest is what the SQL entries' tables must digest to: the MD5 of md5('1'), …,
// md5('1000') joined by commas, as both databases compute it.
func tableDigest(rows int) string {
	parts := make([]string, rows)
	for i := range parts {
		h := md5.Sum([]byte(strconv.Itoa(i + 1)))
		parts[i] = hex.EncodeToString(h[:])
	}
	h := md5.Sum([]byte(strings.Join(parts, ",")))
	return hex.EncodeToString(h[:])
}

var benchmarkRe = regexp.MustCompile(`(SET|GET): ([0-9.]+) requests per second`)

func redisEntry() *Entry {
	return &Entry{
		Name:    "redis",
		Program: "redis-server + redis-cli + redis-benchmark",
		Checks:  "SET/GET of a short and a 96 KiB value; CLIENT INFO names the client's address; redis-benchmark -n 10000 -q with 16-deep pipelining, counted by the server",
		Needs:   []string{"redis-server", "redis-cli", "redis-benchmark"},
		Versions: []Version{versionOf("redis-server", `v=(\S+)`, "redis-server", "--version"),
			versionOf("redis-cli", `redis-cli (\S+)`, "redis-cli", "--version")},
		Short: true,
		Run: func(c *Case) {
			dir := c.Mkdir("redis")
			port := c.Port()
			srv := c.Server.StartCmd("redis-server", Cmd{As: c.User, Argv: []string{"redis-server",
				"--port", fmt.Sprint(port), "--bind", c.Server.Addr.String(), "--protected-mode", "no",
				"--save", "", "--appendonly", "no", "--dir", dir, "--daemonize", "no"}})
			srv.WaitTCP(port)
			cli := func(args ...string) []string {
				return append([]string{"redis-cli", "-h", c.Server.Addr.String(), "-p", fmt.Sprint(port)}, args...)
			}
			c.Equal("SET", c.Client.Run(cli("SET", "compat:greeting", "hello from "+c.Placement)...), "OK")
			c.Equal("GET", c.Client.Run(cli("GET", "compat:greeting")...), "hello from "+c.Placement)

			// A value of many TCP segments, sent by redis-cli -x from its standard input.
			_, _ = c.Payload("redis/raw.bin", 48<<10)
			value := hex.EncodeToString([]byte(c.ReadFile("redis/raw.bin")))
			valueFile := c.WriteFile("redis/value.txt", []byte(value))
			c.Equal("SET -x", c.Client.RunCmd(Cmd{Argv: cli("-x", "SET", "compat:blob"), Stdin: valueFile}), "OK")
			c.Equal("GET of 96 KiB", c.Client.Run(cli("GET", "compat:blob")...), value)

			info := c.Client.Run(cli("CLIENT", "INFO")...)
			if m := regexp.MustCompile(`addr=(\S+):\d+ `).FindStringSubmatch(info); m == nil || m[1] != c.Client.Addr.String() {
				c.Fatalf("CLIENT INFO does not name %s as the client: %q", c.Client.Addr, info)
			}

			bench := c.Client.Run("redis-benchmark", "-h", c.Server.Addr.String(), "-p", fmt.Sprint(port),
				"-n", "10000", "-q", "-P", "16", "-t", "set,get")
			found := benchmarkRe.FindAllStringSubmatch(bench, -1)
			if len(found) != 2 {
				c.Fatalf("redis-benchmark printed no SET and GET rates:\n%s", bench)
			}
			stats := c.Client.Run(cli("INFO", "commandstats")...)
			for _, cmd := range []string{"set", "get"} {
				m := regexp.MustCompile(`cmdstat_` + cmd + `:calls=(\d+)`).FindStringSubmatch(stats)
				if m == nil {
					c.Fatalf("INFO commandstats has no %s calls:\n%s", cmd, stats)
				}
				if n, _ := strconv.Atoi(m[1]); n < 10000 {
					c.Fatalf("server counted %d %s calls, want at least 10000 from redis-benchmark", n, cmd)
				}
			}
			c.Note("redis-benchmark -P 16: %s %s req/s, %s %s req/s", found[0][1], found[0][2], found[1][1], found[1][2])
		},
	}
}

func memcachedEntry() *Entry {
	return &Entry{
		Name:     "memcached",
		Program:  "memcached + libmemcached tools (memccp, memccat, memcstat)",
		Checks:   "store a 200 KiB file with memccp, read it back with memccat over the text and the binary protocol (sha256), memcstat counts the item",
		Needs:    []string{"memcached", "memccp", "memccat", "memcstat"},
		Versions: []Version{versionOf("", `memcached \S+`, "memcached", "-V"), versionOf("libmemcached", `([0-9.]+)`, "memccat", "--version")},
		Run: func(c *Case) {
			port := c.Port()
			srv := c.Server.StartCmd("memcached", Cmd{As: c.User, Argv: []string{"memcached",
				"-l", c.Server.Addr.String(), "-p", fmt.Sprint(port), "-U", "0", "-m", "16", "-c", "64", "-v"}})
			srv.WaitTCP(port)
			servers := "--servers=" + c.Server.HostPort(port)
			file, sum := c.Payload("memcached/compat-item", 200<<10)
			c.Client.Run("memccp", servers, file)
			// Read back with the text protocol and with the binary one.
			for _, proto := range []string{"text", "binary"} {
				out := c.Path("memcached/" + proto + ".out")
				argv := []string{"memccat", servers, "--file=" + out, "compat-item"}
				if proto == "binary" {
					argv = append(argv, "--binary")
				}
				c.Client.Run(argv...)
				c.SameFile("memccat ("+proto+" protocol)", out, sum)
			}
			stat := c.Client.Run("memcstat", servers)
			if !regexp.MustCompile(`curr_items: 1\b`).MatchString(stat) {
				c.Fatalf("memcstat does not count one item:\n%s", clip(stat, 2000))
			}
		},
	}
}

// postgresBin is the directory of the newest installed PostgreSQL's programs.
func postgresBin() string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi < vj
	})
	if len(dirs) == 0 {
		return "/usr/lib/postgresql/NONE/bin"
	}
	return dirs[len(dirs)-1]
}

func postgresEntry() *Entry {
	bin := postgresBin()
	return &Entry{
		Name:    "postgresql",
		Program: "PostgreSQL server + psql",
		Checks:  "initdb as an unprivileged user; psql logs in with SCRAM over TCP, creates a table, inserts 1000 rows, selects their digest; inet_client_addr() is the client",
		Needs:   []string{bin + "/postgres", bin + "/initdb", bin + "/psql", bin + "/pg_isready"},
		Versions: []Version{versionOf("PostgreSQL", `\(PostgreSQL\) (\S+)`, bin+"/postgres", "--version"),
			versionOf("psql", `\(PostgreSQL\) (\S+)`, bin+"/psql", "--version")},
		Run: func(c *Case) {
			dir := c.Mkdir("pg")
			const password = "compat-secret"
			pw := c.WriteFile("pg/pwfile", []byte(password+"\n"))
			c.HostCmd(Cmd{As: c.User, Argv: []string{bin + "/initdb", "-D", dir + "/data", "-U", "postgres",
				"--pwfile", pw, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-sync"}})
			hba, err := os.OpenFile(dir+"/data/pg_hba.conf", os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				c.Fatalf("%v", err)
			}
			fmt.Fprintln(hba, "host all all 0.0.0.0/0 scram-sha-256")
			hba.Close()

			port := c.Port()
			srv := c.Server.StartCmd("postgres", Cmd{As: c.User, Argv: []string{bin + "/postgres", "-D", dir + "/data",
				"-c", "listen_addresses=" + c.Server.Addr.String(), "-p", fmt.Sprint(port),
				"-c", "unix_socket_directories=" + dir, "-c", "fsync=off", "-c", "log_connections=on"}})
			srv.WaitTCP(port)
			host := []string{"-h", c.Server.Addr.String(), "-p", fmt.Sprint(port)}
			c.Eventually("pg_isready", 30*time.Second, func() error {
				_, err := c.Client.Exec(Cmd{Argv: append([]string{bin + "/pg_isready"}, host...)})
				return err
			})
			script := c.WriteFile("pg/check.sql", []byte(`
create table compat (id int primary key, v text);
insert into compat select g, md5(g::text) from generate_series(1, 1000) g;
select count(*) || ' ' || md5(string_agg(v, ',' order by id)) from compat;
select host(inet_client_addr());
`))
			out := c.Client.RunCmd(Cmd{Env: []string{"PGPASSWORD=" + password}, Argv: append(append([]string{bin + "/psql"}, host...),
				"-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1", "-X", "-q", "-At", "-f", script)})
			c.Equal("psql", out, fmt.Sprintf("1000 %s\n%s", tableDigest(1000), c.Client.Addr))
		},
	}
}

func mariadbEntry() *Entry {
	return &Entry{
		Name:    "mariadb",
		Program: "MariaDB server + mysql client",
		Checks:  "mariadb-install-db into a temporary directory; mysql logs in with a password over TCP, creates a table, inserts 1000 rows, selects their digest; USER() shows the client's address",
		Needs:   []string{"mariadbd", "mariadb-install-db", "mysql"},
		Versions: []Version{versionOf("MariaDB", `Ver (\S+?)-MariaDB`, "mariadbd", "--version"),
			versionOf("mysql", `(?:Distrib|from) (\S+?)(?:-MariaDB)?,?\s`, "mysql", "--version")},
		Run: func(c *Case) {
			dir := c.Mkdir("mariadb")
			c.HostCmd(Cmd{Timeout: 3 * time.Minute, Argv: []string{"mariadb-install-db", "--no-defaults",
				"--datadir=" + dir + "/data", "--user=" + c.User.Name, "--auth-root-authentication-method=normal",
				"--skip-test-db", "--skip-name-resolve"}})
			const password = "compat-secret"
			initSQL := c.WriteFile("mariadb/init.sql", []byte(fmt.Sprintf(
				"CREATE USER IF NOT EXISTS 'compat'@'%%' IDENTIFIED BY '%s';\nGRANT ALL ON *.* TO 'compat'@'%%';\n", password)))
			port := c.Port()
			srv := c.Server.Start("mariadbd", "mariadbd", "--no-defaults", "--datadir="+dir+"/data",
				"--user="+c.User.Name, "--port="+fmt.Sprint(port), "--bind-address="+c.Server.Addr.String(),
				"--socket="+dir+"/mysqld.sock", "--pid-file="+dir+"/mariadbd.pid", "--skip-name-resolve",
				"--skip-log-bin", "--innodb-buffer-pool-size=32M", "--init-file="+initSQL)
			srv.WaitTCP(port)
			script := c.WriteFile("mariadb/check.sql", []byte(`
CREATE DATABASE compat;
USE compat;
CREATE TABLE compat.t (id INT PRIMARY KEY, v VARCHAR(32));
INSERT INTO compat.t SELECT seq, MD5(seq) FROM seq_1_to_1000;
SELECT CONCAT(COUNT(*), ' ', MD5(GROUP_CONCAT(v ORDER BY id SEPARATOR ','))) FROM compat.t;
SELECT SUBSTRING_INDEX(USER(), '@', -1);
`))
			out := c.Client.RunCmd(Cmd{Stdin: script, Env: []string{"MYSQL_PWD=" + password}, Argv: []string{"mysql",
				"--no-defaults", "--protocol=TCP", "-h", c.Server.Addr.String(), "-P", fmt.Sprint(port),
				"-u", "compat", "--batch", "--skip-column-names"}})
			c.Equal("mysql", out, fmt.Sprintf("1000 %s\n%s", tableDigest(1000), c.Client.Addr))
		},
	}
}

// ferretDBVersion is the FerretDB release the Mongo entry builds (v1: it has the SQLite
// backend; v2 needs PostgreSQL with DocumentDB).
const ferretDBVersion = "v1.24.2"

// mongoDriverVersion is the MongoDB Node.js driver release the Mongo entry's client uses.
const mongoDriverVersion = "6.22.0"

func mongoEntry() *Entry {
	return &Entry{
		Name:    "mongodb-wire",
		Program: "FerretDB " + ferretDBVersion + " (MongoDB wire protocol, SQLite backend) + MongoDB Node.js driver",
		Checks: "mongod is not packaged here: FerretDB, a real MongoDB-protocol server built from the Go module proxy, " +
			"driven by the official MongoDB Node.js driver from npm: insertMany 1000 documents, find with filter/sort/limit, " +
			"updateMany, aggregate sum, count",
		Needs: []string{"node", "npm"},
		Versions: []Version{{Label: "FerretDB " + ferretDBVersion + ", mongodb driver " + mongoDriverVersion},
			versionOf("Node.js", `v\S+`, "node", "--version")},
		Run: func(c *Case) {
			ferret := c.Env.Install(c, "FerretDB "+ferretDBVersion, func() (string, error) {
				built, err := buildFerretDB(c.Env)
				if err != nil {
					return "", err
				}
				// The cache is root's; the server runs as the account.
				return copyExecutable(built, filepath.Join(c.Env.Dir, "bin", "ferretdb"))
			})
			modules := c.Env.Install(c, "npm mongodb@"+mongoDriverVersion, func() (string, error) {
				return npmInstall(c.Env, "mongodb", mongoDriverVersion)
			})
			dir := c.Mkdir("ferretdb")
			c.Mkdir("ferretdb/data")
			port := c.Port()
			srv := c.Server.StartCmd("ferretdb", Cmd{As: c.User, Env: []string{"DO_NOT_TRACK=1"}, Argv: []string{ferret,
				"--handler=sqlite", "--sqlite-url=file:" + dir + "/data/", "--state-dir=" + dir,
				"--listen-addr=" + c.Server.HostPort(port), "--debug-addr=-", "--telemetry=disable", "--log-level=warn"}})
			srv.WaitTCP(port)
			out := c.Client.RunCmd(Cmd{Env: []string{"NODE_PATH=" + modules}, Argv: []string{"node",
				testdata("node/mongo-client.js"), "mongodb://" + c.Server.HostPort(port) + "/?directConnection=true"}})
			var got struct {
				Inserted, Count, Sum, Modified int
				Top                            []int
				Server                         string
			}
			if err := json.Unmarshal([]byte(lastLines(out, 1)), &got); err != nil {
				c.Fatalf("mongo client output: %v\n%s", err, out)
			}
			want := fmt.Sprint([]int{1000, 999, 998, 997, 996})
			if got.Inserted != 1000 || got.Count != 1000 || got.Sum != 500500 || got.Modified != 10 || fmt.Sprint(got.Top) != want {
				c.Fatalf("mongo client saw %+v; want 1000 inserted and counted, sum 500500, 10 modified, top %s", got, want)
			}
			c.Note("server reports MongoDB %s", got.Server)
		},
	}
}

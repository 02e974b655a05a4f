package compat

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// testdataDir is the absolute path of this package's testdata (go test runs tests in the
// package's directory; agents run programs elsewhere).
var testdataDir = func() string {
	d, err := filepath.Abs("testdata")
	if err != nil {
		panic(err)
	}
	return d
}()

func testdata(name string) string { return filepath.Join(testdataDir, name) }

// buildFerretDB builds FerretDB's ferretdb command at ferretDBVersion from its module, fetched
// through the Go module proxy, as a static binary in the cache. The module lacks the
// build/version/version.txt that FerretDB's release process generates (ferretdb panics
// without it), so the build writes it: the source is otherwise unmodified.
func buildFerretDB(env *Env) (string, error) {
	const module = "github.com/FerretDB/FerretDB"
	dir, err := env.Cached("ferretdb-"+ferretDBVersion, func(tmp string) error {
		out, err := run(tmp, []string{"GOFLAGS="}, goCommand(), "mod", "download", "-json", module+"@"+ferretDBVersion)
		if err != nil {
			return err
		}
		var mod struct{ Dir, Error string }
		if err := json.Unmarshal([]byte(out), &mod); err != nil || mod.Dir == "" {
			return fmt.Errorf("go mod download %s@%s: %v %s", module, ferretDBVersion, err, mod.Error)
		}
		src := filepath.Join(tmp, "src")
		if err := os.CopyFS(src, os.DirFS(mod.Dir)); err != nil {
			return err
		}
		defer os.RemoveAll(src)
		if err := os.WriteFile(filepath.Join(src, "build", "version", "version.txt"), []byte(ferretDBVersion+"\n"), 0o644); err != nil {
			return err
		}
		_, err = run(src, []string{"CGO_ENABLED=0", "GOFLAGS=", "GOTOOLCHAIN=local"},
			goCommand(), "build", "-trimpath", "-o", filepath.Join(tmp, "ferretdb"), "./cmd/ferretdb")
		return err
	})
	return filepath.Join(dir, "ferretdb"), err
}

// npmInstall installs an npm package at an exact version into the cache and returns its
// node_modules directory (for NODE_PATH). Install scripts are not run.
func npmInstall(env *Env, pkg, version string) (string, error) {
	dir, err := env.Cached("npm-"+pkg+"-"+version, func(tmp string) error {
		_, err := run(tmp, nil, "npm", "install", "--no-audit", "--no-fund", "--ignore-scripts",
			"--prefix", tmp, pkg+"@"+version)
		return err
	})
	return filepath.Join(dir, "node_modules"), err
}

// buildGoProgram builds testdata/NAME as a static binary (CGO_ENABLED=0) for this run.
func buildGoProgram(env *Env, name string) (string, error) {
	out := filepath.Join(env.Dir, "bin", name)
	return out, env.timed("go build testdata/"+name+" (CGO_ENABLED=0)", false, func() error {
		_, err := run(testdataDir, []string{"CGO_ENABLED=0"}, goCommand(), "build", "-o", out, "./"+name)
		return err
	})
}

// buildJava compiles testdata/java/NAME.java with javac for this run and returns the class
// directory.
func buildJava(env *Env, name string) (string, error) {
	out := filepath.Join(env.Dir, "java")
	return out, env.timed("javac testdata/java/"+name+".java", false, func() error {
		_, err := run(testdataDir, nil, "javac", "-d", out, filepath.Join("java", name+".java"))
		return err
	})
}

// copyExecutable copies an executable to dst (mode 0755) and returns dst. A child process
// does the writing: a program forked by this process while it held the file open for writing
// would keep the file busy (ETXTBSY) for whoever executes it next.
func copyExecutable(src, dst string) (string, error) {
	_, err := run("", nil, "install", "-D", "-m", "0755", src, dst)
	return dst, err
}

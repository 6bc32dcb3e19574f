package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// cmdVersion says which pythia-pipe this is: its version, the commit it was built from (with
// "+changes" when the tree had some), the Go that built it and the sarama it speaks Kafka with.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if code, ok := noArgs(args, "pythia-pipe version", "version, commit, Go and sarama", stdout, stderr); !ok {
		return code
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(stdout, "pythia-pipe (no build information)")
		return exitOK
	}
	version, commit, sarama := info.Main.Version, "unknown", "unknown"
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			commit = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty {
		commit += "+changes"
	}
	for _, d := range info.Deps {
		if d.Path == "github.com/IBM/sarama" {
			sarama = d.Version
		}
	}
	fmt.Fprintf(stdout, "pythia-pipe %s\ncommit %s\n%s\nsarama %s\n", version, commit, info.GoVersion, sarama)
	return exitOK
}

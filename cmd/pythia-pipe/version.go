package main

import (
	"fmt"
	"io"
	"runtime/debug"
)

// cmdVersion says which pythia-pipe this is: its version, the commit it was built from (with
// "+changes" when the tree had some), the Go that built it and the Kafka clients it speaks
// Kafka with: franz-go, and sarama for `kafka.client: sarama`.
func cmdVersion(args []string, stdout, stderr io.Writer) int {
	if code, ok := noArgs(args, "pythia-pipe version", "version, commit, Go and the Kafka clients", stdout, stderr); !ok {
		return code
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		fmt.Fprintln(stdout, "pythia-pipe (no build information)")
		return exitOK
	}
	version, commit := info.Main.Version, "unknown"
	clients := map[string]string{"github.com/twmb/franz-go": "unknown", "github.com/IBM/sarama": "unknown"}
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
		if _, ok := clients[d.Path]; ok {
			clients[d.Path] = d.Version
		}
	}
	fmt.Fprintf(stdout, "pythia-pipe %s\ncommit %s\n%s\nfranz-go %s\nsarama %s (kafka.client: sarama)\n", version, commit,
		info.GoVersion, clients["github.com/twmb/franz-go"], clients["github.com/IBM/sarama"])
	return exitOK
}

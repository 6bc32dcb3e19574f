package deploytest

import (
	"encoding/json"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// instruction is one instruction of a Containerfile: its keyword and the rest of its line.
type instruction struct{ op, args string }

// parseContainerfile splits src into instructions (comments dropped, continued lines joined)
// and returns those of its last stage, from its FROM on.
func parseContainerfile(src string) []instruction {
	var all []instruction
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		op, args, _ := strings.Cut(cur.String(), " ")
		all = append(all, instruction{strings.ToUpper(op), strings.Join(strings.Fields(args), " ")})
		cur.Reset()
	}
	last := 0
	for i, in := range all {
		if in.op == "FROM" {
			last = i
		}
	}
	return all[last:]
}

// execForm is the JSON (exec) form of an ENTRYPOINT or CMD.
func execForm(t *testing.T, in instruction) []string {
	t.Helper()
	var out []string
	if err := json.Unmarshal([]byte(in.args), &out); err != nil {
		t.Fatalf("%s %s: not in the exec form [\"…\"]: %v", in.op, in.args, err)
	}
	return out
}

// the returns the last instruction op of a stage, failing when there is none.
func the(t *testing.T, stage []instruction, op string) instruction {
	t.Helper()
	for i := len(stage) - 1; i >= 0; i-- {
		if stage[i].op == op {
			return stage[i]
		}
	}
	t.Fatalf("no %s in the final stage", op)
	return instruction{}
}

// copyDest is where a COPY puts its files.
func copyDest(in instruction) string {
	f := strings.Fields(in.args)
	return f[len(f)-1]
}

func TestImageFiles(t *testing.T) {
	containerfile := parseContainerfile(string(readRepoFile(t, "deploy/image/Containerfile")))
	dockerfile := parseContainerfile(string(readRepoFile(t, "deploy/image/Dockerfile")))
	passwd := string(readRepoFile(t, "deploy/image/passwd"))
	group := string(readRepoFile(t, "deploy/image/group"))

	for _, c := range []struct {
		name  string
		check func(t *testing.T)
	}{
		{"the image is FROM scratch: nothing but what it copies", func(t *testing.T) {
			for name, stage := range map[string][]instruction{"Containerfile": containerfile, "Dockerfile": dockerfile} {
				if from := stage[0]; from.args != "scratch" {
					t.Errorf("%s: final stage FROM %s, want scratch", name, from.args)
				}
			}
		}},
		{"the Dockerfile's final stage is the Containerfile's", func(t *testing.T) {
			// The same instructions, but for where a COPY takes its files from.
			norm := func(stage []instruction) []instruction {
				var out []instruction
				for _, in := range stage {
					if in.op == "COPY" {
						in.args = copyDest(in)
					}
					out = append(out, in)
				}
				return out
			}
			if got, want := norm(dockerfile), norm(containerfile); !reflect.DeepEqual(got, want) {
				t.Errorf("Dockerfile's final stage:\n%v\nContainerfile:\n%v", got, want)
			}
		}},
		{"entrypoint is the binary it copies, default command runs the mounted pipeline", func(t *testing.T) {
			entry := execForm(t, the(t, containerfile, "ENTRYPOINT"))
			copied := map[string]bool{}
			for _, in := range containerfile {
				if in.op == "COPY" {
					copied[copyDest(in)] = true
				}
			}
			if len(entry) != 1 || !copied[entry[0]] || !strings.HasSuffix(entry[0], "/pythia-pipe") {
				t.Errorf("ENTRYPOINT %q: want the pythia-pipe binary the image copies (%v)", entry, copied)
			}
			cmd := execForm(t, the(t, containerfile, "CMD"))
			checkArgs(t, cmd, pipelinePath)
			if !reflect.DeepEqual(cmd, []string{"run", pipelinePath}) {
				t.Errorf("CMD %q, want [run %s]", cmd, pipelinePath)
			}
		}},
		{"it runs as a non-root user its /etc/passwd names", func(t *testing.T) {
			user := the(t, containerfile, "USER").args
			uid, gid, _ := strings.Cut(user, ":")
			if uid == "0" || uid == "root" || !regexp.MustCompile(`^\d+$`).MatchString(uid) {
				t.Errorf("USER %s: want a numeric uid other than 0 (Kubernetes' runAsNonRoot checks numbers)", user)
			}
			if !regexp.MustCompile(`(?m)^[a-z]+:x:` + uid + `:` + gid + `:`).MatchString(passwd) {
				t.Errorf("deploy/image/passwd has no user %s with group %s:\n%s", uid, gid, passwd)
			}
			if !regexp.MustCompile(`(?m)^[a-z]+:x:` + gid + `:`).MatchString(group) {
				t.Errorf("deploy/image/group has no group %s:\n%s", gid, group)
			}
		}},
		{"CA certificates where Go looks for them", func(t *testing.T) {
			for _, in := range containerfile {
				if in.op == "COPY" && copyDest(in) == "/etc/ssl/certs/ca-certificates.crt" {
					return
				}
			}
			t.Error("no COPY to /etc/ssl/certs/ca-certificates.crt: TLS with the system roots would fail")
		}},
		{"OCI labels: source, version, revision", func(t *testing.T) {
			label := the(t, containerfile, "LABEL").args
			for _, key := range []string{"source", "version", "revision", "title"} {
				if !strings.Contains(label, "org.opencontainers.image."+key+"=") {
					t.Errorf("no org.opencontainers.image.%s label in %s", key, label)
				}
			}
			for _, arg := range []string{"VERSION", "REVISION"} {
				if !strings.Contains(label, "${"+arg+"}") {
					t.Errorf("the labels do not use the build argument %s (make image sets it)", arg)
				}
			}
		}},
	} {
		t.Run(c.name, c.check)
	}
}

package registry

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// MinJava is the oldest Java the registry runs on (Apicurio Registry 3.x is built for 21).
const MinJava = 21

// Java is a java launcher and its major version.
type Java struct {
	Path  string
	Major int
}

// jvmDir is where Debian's JDKs (and Temurin's packages) live.
var jvmDir = "/usr/lib/jvm"

// FindJava finds a Java of MinJava or newer: $JAVA_HOME's, then the one on PATH, then the
// newest under /usr/lib/jvm. Without one, the error is one line naming what was found.
func FindJava() (Java, error) {
	var seen []Java
	done := map[string]bool{}
	try := func(path string) (Java, bool) {
		real, err := filepath.EvalSymlinks(path)
		if err != nil || done[real] {
			return Java{}, false
		}
		done[real] = true
		out, err := exec.Command(path, "-version").CombinedOutput()
		if err != nil {
			return Java{}, false
		}
		major, ok := javaMajor(string(out))
		if !ok {
			return Java{}, false
		}
		j := Java{Path: path, Major: major}
		seen = append(seen, j)
		return j, major >= MinJava
	}
	if home := os.Getenv("JAVA_HOME"); home != "" {
		if j, ok := try(filepath.Join(home, "bin", "java")); ok {
			return j, nil
		}
	}
	if path, err := exec.LookPath("java"); err == nil {
		if j, ok := try(path); ok {
			return j, nil
		}
	}
	jvms, _ := filepath.Glob(filepath.Join(jvmDir, "*", "bin", "java"))
	var found []Java
	for _, path := range jvms {
		if j, ok := try(path); ok {
			found = append(found, j)
		}
	}
	if len(found) > 0 {
		sort.SliceStable(found, func(a, b int) bool { return found[a].Major > found[b].Major })
		return found[0], nil
	}
	var have []string
	for _, j := range seen {
		have = append(have, fmt.Sprintf("%d at %s", j.Major, j.Path))
	}
	what := "no java at all"
	if len(have) > 0 {
		what = "only " + strings.Join(have, ", ")
	}
	return Java{}, fmt.Errorf("Apicurio Registry needs Java %d or newer: found %s (looked at $JAVA_HOME, PATH and %s); "+
		"install a JDK %d+ and set JAVA_HOME to it (Debian bookworm has no openjdk-21 package)", MinJava, what, jvmDir, MinJava)
}

var javaVersion = regexp.MustCompile(`version "(\d+)(?:\.(\d+))?`)

// javaMajor reads the major version from `java -version`'s output: "17.0.15" is 17, "25" is 25,
// and "1.8.0_412" is 8.
func javaMajor(out string) (int, bool) {
	m := javaVersion.FindStringSubmatch(out)
	if m == nil {
		return 0, false
	}
	major, _ := strconv.Atoi(m[1])
	if major == 1 && m[2] != "" {
		major, _ = strconv.Atoi(m[2])
	}
	return major, major > 0
}

package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestJavaMajor(t *testing.T) {
	for out, want := range map[string]int{
		"openjdk version \"17.0.15\" 2025-04-15\nOpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)": 17,
		"openjdk version \"25.0.3\" 2026-04-21 LTS":                                                             25,
		"openjdk version \"21\" 2023-09-19":                                                                     21,
		"java version \"1.8.0_412\"\nJava(TM) SE Runtime Environment":                                           8,
		"Picked up JAVA_TOOL_OPTIONS: -Xss2m\nopenjdk version \"22-ea\" 2024-03-19":                             22,
	} {
		if got, ok := javaMajor(out); !ok || got != want {
			t.Errorf("javaMajor(%q) = %d, %v; want %d", out, got, ok, want)
		}
	}
	if _, ok := javaMajor("bash: java: command not found"); ok {
		t.Error("javaMajor found a version in an error")
	}
}

// fakeJava writes dir/NAME/bin/java, a script printing a `java -version` of the major given.
func fakeJava(t *testing.T, dir, name, version string) string {
	t.Helper()
	path := filepath.Join(dir, name, "bin", "java")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho 'openjdk version \"" + version + "\" 2026-01-01' >&2\n"
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFindJava(t *testing.T) {
	dir := t.TempDir()
	old := jvmDir
	jvmDir = dir
	defer func() { jvmDir = old }()
	java17 := fakeJava(t, dir, "java-17-openjdk-amd64", "17.0.15")
	t.Setenv("PATH", filepath.Dir(java17))
	t.Setenv("JAVA_HOME", "")

	_, err := FindJava()
	if err == nil || strings.Contains(err.Error(), "\n") ||
		!strings.Contains(err.Error(), "needs Java 21 or newer: found only 17 at "+java17) {
		t.Fatalf("with Java 17 alone: %v", err)
	}
	t.Log(err)

	fakeJava(t, dir, "temurin-21-jdk-amd64", "21.0.9")
	java25 := fakeJava(t, dir, "temurin-25-jdk-amd64", "25.0.3")
	if j, err := FindJava(); err != nil || j.Path != java25 || j.Major != 25 {
		t.Fatalf("with 17, 21 and 25: %+v, %v; want the newest", j, err)
	}

	home := filepath.Join(dir, "temurin-21-jdk-amd64")
	t.Setenv("JAVA_HOME", home)
	if j, err := FindJava(); err != nil || j.Path != filepath.Join(home, "bin", "java") || j.Major != 21 {
		t.Fatalf("with JAVA_HOME at 21: %+v, %v; want JAVA_HOME's", j, err)
	}
}

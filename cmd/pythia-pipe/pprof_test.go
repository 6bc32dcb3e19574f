package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// --pprof serves Go's profiles, and stopping ends the server.
func TestServePprof(t *testing.T) {
	url, stop, err := servePprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(url + "goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "goroutine profile") {
		t.Fatalf("%d %.200s", resp.StatusCode, body)
	}
	stop()
	if _, err := http.Get(url); err == nil {
		t.Fatal("the profile server still answers after stop")
	}
}

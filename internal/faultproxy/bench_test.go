package faultproxy

import (
	"fmt"
	"io"
	"net"
	"runtime"
	"testing"
)

// BenchmarkForward measures bytes/s one way through the proxy on loopback, writing chunks of
// the size given, against the same without the proxy.
func BenchmarkForward(b *testing.B) {
	for _, size := range []int{1 << 10, 32 << 10} {
		for _, via := range []string{"proxy", "direct"} {
			b.Run(via+"/"+byteSize(size), func(b *testing.B) {
				up := drain(b)
				addr := up.addr()
				if via == "proxy" {
					addr = start(b, addr).Addr()
				}
				c, err := net.Dial("tcp", addr)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				msg := pattern(size)
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				for range b.N {
					if _, err := c.Write(msg); err != nil {
						b.Fatal(err)
					}
				}
				want := int64(b.N) * int64(size)
				for up.got.Load() < want {
					runtime.Gosched()
				}
			})
		}
	}
}

func byteSize(n int) string {
	if n >= 1<<10 {
		return fmt.Sprintf("%dKiB", n>>10)
	}
	return fmt.Sprintf("%dB", n)
}

// BenchmarkRoundTrip measures a small request answered, through the proxy and without it: what
// the proxy adds to each of a Kafka client's round trips.
func BenchmarkRoundTrip(b *testing.B) {
	for _, via := range []string{"proxy", "direct"} {
		b.Run(via, func(b *testing.B) {
			addr := echo(b).addr()
			if via == "proxy" {
				addr = start(b, addr).Addr()
			}
			c, err := net.Dial("tcp", addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			msg, got := pattern(100), make([]byte, 100)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Write(msg); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(c, got); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

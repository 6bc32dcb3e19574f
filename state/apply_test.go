package state

import (
	"context"
	"testing"
)

// Apply writes its changes in order, a nil value deleting; under exactly-once they join the
// transaction's batch, dropped with it.
func TestApply(t *testing.T) {
	for _, transactional := range []bool{false, true} {
		stores := NewStores(Options{Transactional: transactional}, &memLog{}, plain)
		st, err := stores.Get(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Apply(Change{Key: []byte("a"), Value: []byte("1")}, Change{Key: []byte("b"), Value: []byte("2")}, Change{Key: []byte("a")}); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := st.Get([]byte("a")); ok {
			t.Errorf("transactional %v: a, deleted after it was set, is there", transactional)
		}
		if v, ok, _ := st.Get([]byte("b")); !ok || string(v) != "2" {
			t.Errorf("transactional %v: b is %q, %v", transactional, v, ok)
		}
		if err := stores.Discard(); err != nil {
			t.Fatal(err)
		}
		if _, ok, _ := st.Get([]byte("b")); ok == transactional {
			t.Errorf("transactional %v: after an abort, b there: %v", transactional, ok)
		}
		_ = stores.Close(context.Background(), false)
	}
}

// The memory kept aside of the stores is a quarter of their budget: what does not fit is not
// taken, and what is given back may be taken again.
func TestMemoryReserve(t *testing.T) {
	m := NewMemory(4 << 20)
	defer m.Close()
	steps := []struct {
		name string
		n    int64
		ok   bool
	}{
		{"half of it", 512 << 10, true},
		{"the other half", 512 << 10, true},
		{"a byte more", 1, false},
		{"a half given back", -512 << 10, true},
		{"a half again", 512 << 10, true},
	}
	for _, s := range steps {
		if ok := m.Reserve(s.n); ok != s.ok {
			t.Errorf("%s: Reserve(%d) = %v, want %v", s.name, s.n, ok, s.ok)
		}
	}
}

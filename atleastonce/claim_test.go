package atleastonce

import (
	"slices"
	"testing"
)

func TestCompact(t *testing.T) {
	for _, c := range []struct {
		name   string
		s      []int
		at     int
		want   []int
		wantAt int
	}{
		{"all taken: empty, same array", []int{1, 2, 3}, 3, []int{}, 0},
		{"less than half taken: as it is", []int{1, 2, 3, 4, 5}, 1, []int{1, 2, 3, 4, 5}, 1},
		{"half taken: the rest moved down", []int{1, 2, 3, 4}, 2, []int{3, 4}, 0},
		{"nothing taken", []int{1, 2}, 0, []int{1, 2}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, at := compact(append([]int(nil), c.s...), c.at)
			if !slices.Equal(got, c.want) || at != c.wantAt {
				t.Errorf("compact(%v, %d) = %v, %d; want %v, %d", c.s, c.at, got, at, c.want, c.wantAt)
			}
		})
	}
}

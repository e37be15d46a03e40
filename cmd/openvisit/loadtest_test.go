package main

import (
	"slices"
	"testing"
)

func TestSweepProcs(t *testing.T) {
	for cores, want := range map[int][]int{1: {1}, 2: {1, 2}, 6: {1, 2, 4, 6}, 16: {1, 2, 4, 8, 16}} {
		if got := sweepProcs(cores); !slices.Equal(got, want) {
			t.Errorf("sweepProcs(%d) = %v, want %v", cores, got, want)
		}
	}
}

func TestParseCountsRefusesBadLists(t *testing.T) {
	if got, err := parseCounts("4, 8,16"); err != nil || !slices.Equal(got, []int{4, 8, 16}) {
		t.Errorf("parseCounts(4, 8,16) = %v, %v", got, err)
	}
	for _, bad := range []string{"", "4,4", "8,4", "0", "-1", "x", "4,,8", "20000"} {
		if _, err := parseCounts(bad); err == nil {
			t.Errorf("parseCounts(%q): no error", bad)
		}
	}
}

package compat

import "testing"

func TestJudge(t *testing.T) {
	e := &Entry{Name: "x", Broken: []Broken{{Placement: "zt", Issue: 9, Reason: "drops the first SYN"}}}
	for _, tc := range []struct {
		status     Status
		placement  string
		want       Status
		wantDetail string
	}{
		{Passed, "host", Passed, "a note"},
		{Failed, "host", Failed, "it broke"},
		{Failed, "zt", KnownBroken, "#9: drops the first SYN"},
		{Passed, "zt", Fixed, "passes, but is marked known broken (#9: drops the first SYN): remove the mark"},
		{Skipped, "zt", Skipped, "it broke\nmore"},
	} {
		got, detail := judge(tc.status, "it broke\nmore", "a note", e, tc.placement)
		if got != tc.want || detail != tc.wantDetail {
			t.Errorf("judge(%s in %s) = %s, %q; want %s, %q", tc.status, tc.placement, got, detail, tc.want, tc.wantDetail)
		}
	}
}

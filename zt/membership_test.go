package zt

import "testing"

// TestPushDue: when our credentials go to a member. Times are milliseconds; the routine
// period is 60 s; the config generation is 1 unless a step says otherwise.
func TestPushDue(t *testing.T) {
	const period = 60000
	type step struct {
		name  string
		force bool
		gen   uint64
		now   int64
		want  bool
	}
	for _, tc := range []struct {
		name  string
		steps []step
	}{
		{"routine pushes", []step{
			{"first", false, 1, 1000, true},
			{"again soon", false, 1, 1500, false},
			{"config changed", false, 2, 1600, true},
			{"period over", false, 2, 1600 + period, true},
		}},
		{"asked for just after a routine push: a restarted member", []step{
			{"routine", false, 1, 1000, true},
			{"asked", true, 1, 1010, true},
			{"asked again at once: restarted again", true, 1, 1050, true},
		}},
		{"asked for too often", []step{
			{"1", true, 1, 1000, true}, {"2", true, 1, 1001, true}, {"3", true, 1, 1002, true},
			{"4", true, 1, 1003, true}, {"5", true, 1, 1004, true}, {"6", true, 1, 1005, true},
			{"7", true, 1, 1006, true}, {"8", true, 1, 1007, true}, {"9", true, 1, 1008, true},
			{"10", true, 1, 1009, true},
			{"11th in a second: refused", true, 1, 1500, false},
			{"next second", true, 1, 2000, true},
		}},
		{"asked first", []step{
			{"asked", true, 1, 1000, true},
			{"routine right after: pushed already", false, 1, 1001, false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var m membership
			for _, s := range tc.steps {
				if got := m.pushDue(s.force, s.gen, s.now, period); got != s.want {
					t.Fatalf("%s: due %v, want %v", s.name, got, s.want)
				}
			}
		})
	}
}

package controller

import (
	"fmt"
	"testing"
)

// BenchmarkAnswer measures one answer to an authorized member of a network of n members:
// record lookup, config building, member save (unchanged, so no write), signing.
func BenchmarkAnswer(b *testing.B) {
	for _, members := range []int{10, 1000} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			c, _, _ := newTestController(b, b.TempDir(), 1e12)
			ids := identities(b)
			mustAPI(b, c, "POST", "/controller/network/"+testNetwork.String(), `{"private":false,"v4AssignMode":{"zt":true},
				"v6AssignMode":{"rfc4193":true},"ipAssignmentPools":[{"ipRangeStart":"10.0.0.1","ipRangeEnd":"10.0.255.254"}],
				"routes":[{"target":"10.0.0.0/16"}]}`)
			for i := range members - 1 {
				mustAPI(b, c, "POST", fmt.Sprintf("/controller/network/%s/member/%010x", testNetwork, 0x1000000000+i),
					fmt.Sprintf(`{"authorized":true,"ipAssignments":["10.0.%d.%d"]}`, (i+10)/250, (i+10)%250+1))
			}
			j := job{nwid: testNetwork, requestID: 1, from: ids[1].Public(), metadata: metadata1141()}
			if _, code, err := c.configure(j); err != nil || code != 0 {
				b.Fatal(code, err)
			}
			for b.Loop() {
				nc, _, err := c.configure(j)
				if err != nil {
					b.Fatal(err)
				}
				if err := signConfig(nc, c.id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

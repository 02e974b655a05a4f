package main

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ztnc/ztnc/supervisor"
	"github.com/ztnc/ztnc/zt"
)

func TestRoutingStatus(t *testing.T) {
	configured := func(s zt.Status, addrs ...string) zt.NetworkState {
		st := zt.NetworkState{Status: s, ConfigTime: time.UnixMilli(1_700_000_000_000), MTU: 2800}
		for _, a := range addrs {
			st.Addresses = append(st.Addresses, netip.MustParsePrefix(a))
			st.Routes = append(st.Routes, zt.Route{Target: netip.MustParsePrefix(a).Masked()})
		}
		return st
	}
	for _, tc := range []struct {
		name  string
		state zt.NetworkState
		want  supervisor.NetworkStatus
	}{
		{"joined, no config yet", zt.NetworkState{Status: zt.StatusRequestingConfiguration, MTU: 2800}, supervisor.NetworkUnconfigured},
		{"never authorized", zt.NetworkState{Status: zt.StatusAccessDenied, MTU: 2800}, supervisor.NetworkUnconfigured},
		{"no such network", zt.NetworkState{Status: zt.StatusNotFound, MTU: 2800}, supervisor.NetworkUnconfigured},
		{"OK", configured(zt.StatusOK, "198.51.100.2/24"), supervisor.NetworkUp},
		{"OK without an address", configured(zt.StatusOK), supervisor.NetworkUp},
		{"config from 1970", zt.NetworkState{Status: zt.StatusOK, ConfigTime: time.UnixMilli(0)}, supervisor.NetworkUp},
		{"deauthorized", configured(zt.StatusAccessDenied, "198.51.100.2/24"), supervisor.NetworkDown},
		{"network deleted", configured(zt.StatusNotFound, "198.51.100.2/24"), supervisor.NetworkDown},
		{"client too old", configured(zt.StatusClientTooOld, "198.51.100.2/24"), supervisor.NetworkDown},
		{"SSO login needed", configured(zt.StatusAuthenticationRequired, "198.51.100.2/24"), supervisor.NetworkDown},
	} {
		if got := routingStatus(tc.state); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

package zt

// Version is the software version the node announces to its peers (zerotier-one's, see
// versionMajor), for status displays.
func Version() (major, minor, revision int) {
	return versionMajor, versionMinor, versionRevision
}

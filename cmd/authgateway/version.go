package main

import (
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=..." (make
// build passes `git describe`, the Dockerfile its VERSION build argument).
// Without it, the module's build info says what was built.
var version string

// versionLine is what `authgateway version` prints: the version, and from
// the build info the commit, its time and whether the tree had uncommitted
// changes, so that a bug report says exactly what ran.
func versionLine() string {
	info, _ := debug.ReadBuildInfo()
	return formatVersion(version, info)
}

func formatVersion(ldVersion string, info *debug.BuildInfo) string {
	v := ldVersion
	var details []string
	if info != nil {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		var rev, at, modified string
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value
			}
		}
		if rev != "" {
			d := "commit " + rev
			if at != "" {
				d += " " + at
			}
			if modified == "true" {
				d += " (modified)"
			}
			details = append(details, d)
		}
		if info.GoVersion != "" {
			details = append(details, info.GoVersion)
		}
	}
	if v == "" {
		v = "dev"
	}
	line := "authgateway " + v
	if len(details) > 0 {
		line += " (" + strings.Join(details, ", ") + ")"
	}
	return line
}

package cluster

import (
	"strings"
	"testing"
)

func TestSelectRuntimeAsKindDoes(t *testing.T) {
	installed := func(cmds ...string) func(string) bool {
		return func(c string) bool {
			for _, x := range cmds {
				if x == c {
					return true
				}
			}
			return false
		}
	}
	for _, tt := range []struct {
		env, want string
		have      []string
	}{
		{"", "docker", []string{"docker", "podman", "nerdctl"}},
		{"", "nerdctl", []string{"podman", "nerdctl"}},
		{"", "podman", []string{"podman"}},
		{"podman", "podman", []string{"docker", "podman"}},
		{"docker", "docker", nil}, // asked for: kind reports it missing
		{"finch", "finch", []string{"docker"}},
		{"nerdctl.lima", "nerdctl.lima", []string{"docker"}},
	} {
		got, err := SelectRuntime(tt.env, installed(tt.have...))
		if err != nil || got != tt.want {
			t.Errorf("%s=%q with %v installed: %q, %v; want %q", RuntimeVar, tt.env, tt.have, got, err, tt.want)
		}
	}
	if _, err := SelectRuntime("podmn", installed("docker")); err == nil || !strings.Contains(err.Error(), `"podmn"`) {
		t.Errorf("a misspelt runtime: %v", err)
	}
	if _, err := SelectRuntime("", installed()); err == nil || !strings.Contains(err.Error(), "install Docker") {
		t.Errorf("nothing installed: %v", err)
	}
}

func TestNodeCommandsGoThroughTheRuntime(t *testing.T) {
	t.Setenv(RuntimeVar, "podman")
	c, err := testScope.Open("testbed-rt", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.runtime != "podman" {
		t.Errorf("runtime %q, want podman", c.runtime)
	}
}

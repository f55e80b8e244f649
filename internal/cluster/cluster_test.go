package cluster

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/testbed-dev/testbed/internal/testenv"
	"github.com/testbed-dev/testbed/topology"
)

func TestPortInUseFailsAtOnceNamingPortAndService(t *testing.T) {
	testenv.RequireDocker(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	c, err := testScope.Open(testScope.NameFor("porttest"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Create(context.Background(), CreateOptions{Service: "porttest", Ports: []topology.Port{{Name: "http", NodePort: 30080, HostPort: port}}}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "is in use") || !strings.Contains(err.Error(), "service porttest") {
		t.Fatalf("error %v: want the port and the service", err)
	}
	if ok, _ := c.Exists(context.Background()); ok {
		t.Error("a cluster was created although the port was taken")
	}
}

func TestDeleteMissingClusterSucceeds(t *testing.T) {
	testenv.RequireDocker(t)
	c, err := testScope.Open(testScope.NameFor("never-created"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(context.Background(), &strings.Builder{}); err != nil {
		t.Fatalf("deleting a missing cluster: %v", err)
	}
}

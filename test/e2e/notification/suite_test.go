// Package notification_test is notification's E2E suite, run by `go run magefile.go e2e:notification`.
package notification_test

import (
	"testing"

	"github.com/testbed-dev/testbed/test/e2e/e2eenv"
)

func TestNotification(t *testing.T) { e2eenv.Run(t, "notification") }

var env = e2eenv.Setup("notification", []string{"datastorage", "notification"}, nil)

package startup

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetrySucceedsWithinTheWindow(t *testing.T) {
	n := 0
	err := Retry(context.Background(), time.Second, func(context.Context) error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil || n != 3 {
		t.Errorf("err %v after %d calls", err, n)
	}
}

func TestRetryReturnsTheLastErrorWhenTheWindowCloses(t *testing.T) {
	err := Retry(context.Background(), 300*time.Millisecond, func(context.Context) error { return errors.New("db down") })
	if err == nil || err.Error() != "db down" {
		t.Errorf("got %v", err)
	}
}

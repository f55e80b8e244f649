package kube

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
)

// untilCancelQuiet is ctx with a logger for client-go's informers that
// drops the errors of a list or watch cut short by the end of the wait
// (context canceled, deadline exceeded): a wait that has its answer stops
// its informer, which then printed "Failed to watch ... context canceled"
// on the terminal, between testbed's steps. Other errors still go to
// klog, as before.
func untilCancelQuiet(ctx context.Context) context.Context {
	base := klog.FromContext(ctx).GetSink()
	if cd, ok := base.(logr.CallDepthLogSink); ok {
		base = cd.WithCallDepth(1) // this sink's frame: klog names the caller's file and line
	}
	return klog.NewContext(ctx, logr.New(cancelQuietSink{base}))
}

// cancelQuietSink is a logr.LogSink that passes everything to its base
// except errors caused by a context's end.
type cancelQuietSink struct{ base logr.LogSink }

// Init does not pass info on: the base was set up by its own logger, and
// klog's sink, shared by every logger of the process, would be changed
// (its call depth) under them.
func (s cancelQuietSink) Init(logr.RuntimeInfo) {}

func (s cancelQuietSink) Enabled(level int) bool { return s.base != nil && s.base.Enabled(level) }

func (s cancelQuietSink) Info(level int, msg string, kv ...any) {
	if s.base != nil {
		s.base.Info(level, msg, kv...)
	}
}

func (s cancelQuietSink) Error(err error, msg string, kv ...any) {
	if s.base == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return
	}
	s.base.Error(err, msg, kv...)
}

func (s cancelQuietSink) WithValues(kv ...any) logr.LogSink {
	if s.base == nil {
		return s
	}
	return cancelQuietSink{s.base.WithValues(kv...)}
}

func (s cancelQuietSink) WithName(name string) logr.LogSink {
	if s.base == nil {
		return s
	}
	return cancelQuietSink{s.base.WithName(name)}
}

// WithCallDepth passes a caller's extra depth on to the base.
func (s cancelQuietSink) WithCallDepth(depth int) logr.LogSink {
	if cd, ok := s.base.(logr.CallDepthLogSink); ok {
		return cancelQuietSink{cd.WithCallDepth(depth)}
	}
	return s
}

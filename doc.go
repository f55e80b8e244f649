// Package testbed stands up the end-to-end (E2E) test environment of a
// multi-service Kubernetes platform as fast as the dependencies between
// its parts allow, runs a service's E2E suite in it, and tells what
// happened, where the time went and why anything failed.
//
// # The topology
//
// A platform is declared in a topology file (package topology): images
// (built here from a Dockerfile and Go binaries compiled on the host, or
// third-party references), components (a kustomize directory, the images
// it runs, the components that must be Ready before it is applied),
// Secrets generated per cluster, and services: the components of each
// service's environment, the NodePorts mapped to the host, the suite, and
// the shape of its kind cluster (workers, a kind configuration to merge).
// Its name names the platform's clusters (<name>-<service>) and the
// directory of their state, so two repositories never touch each other's.
//
// # A run
//
// Run turns a service into a plan of steps (package engine) and runs it:
// build each image (cached by the hash of its inputs), create the kind
// cluster, load the images into every node, apply each component the
// moment what it needs is Ready, wait for readiness by watching the
// objects (failing fast, with the reason, on a crash loop or an image
// that cannot be pulled), run the suite, and delete the cluster. Each step
// starts as soon as its needs are done, so builds overlap the cluster's
// creation. On failure the diagnostics (events, logs, node logs) are
// written under Options.Artifacts before the cluster goes; the timeline
// (text, JSON, SVG) with its critical path is written in every case.
//
// # Where the images and the cluster come from
//
// By default each image is built here and side-loaded into a kind cluster
// made for the run. Options.LocalRegistry pushes them once to a registry
// testbed runs beside kind instead; Options.Registry and Options.Tag run
// images a build job pushed (Push is that job). Options.Existing runs on
// a cluster testbed did not make: nothing is created or deleted there,
// each run gets a namespace of its own (deleted at the end), its own
// copies of cluster-scoped objects other than CRDs, and port-forwards on
// 127.0.0.1 in place of node ports, so two runs there at once do not
// collide. All, with Options.OneCluster, makes one kind cluster (one per
// cluster shape) and runs its services on it the same way, a namespace
// each: one create and one load of each image instead of one per service.
//
// # Three ways in
//
//   - Mage: import package targets into a magefile (//mage:import) for
//     build:images, cluster:*, deploy:parallel, plan:show, e2e:run,
//     e2e:all, ci:* and bench:*, and write a one-line e2e:<service> per
//     service with targets.E2E.
//   - Go: New (or Load) with Options, then Run, All, Warm, Delete, Prune.
//     The library reads no knob itself: OptionsFromEnv reads them (Knobs)
//     for a command layer. It reads only the variables a topology's
//     third-party images name (env:), KIND_EXPERIMENTAL_PROVIDER as kind
//     does, and GITHUB_ACTIONS to frame its output. Bad input (an unknown service, a
//     knob's bad value, an invalid topology) is ErrInput, and nothing was
//     started.
//   - Suites: package suiteenv names the variables a suite gets
//     (E2E_KUBECONFIG, E2E_NAMESPACE, E2E_<PORT>_URL).
//
// Everything else (images, clusters, Kubernetes, the change-to-service
// mapping) is internal to the module.
package testbed

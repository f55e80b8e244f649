package engine_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"time"

	"github.com/testbed-dev/testbed/engine"
)

// Steps start the moment what they need is done: here "app" waits for
// "db", and "image" runs beside both.
func ExampleRun() {
	work := func(d time.Duration) func(context.Context, io.Writer) error {
		return func(ctx context.Context, w io.Writer) error {
			time.Sleep(d)
			return nil
		}
	}
	p := &engine.Plan{Name: "demo", Steps: []engine.Step{
		{Name: "db", Run: work(20 * time.Millisecond)},
		{Name: "image", Class: "build", Run: work(10 * time.Millisecond)},
		{Name: "app", Needs: []string{"db", "image"}, Run: work(time.Millisecond)},
	}, Limits: map[string]int{"build": 1}}
	res, err := engine.Run(context.Background(), p, engine.Options{Mode: engine.Dataflow})
	if err != nil {
		log.Fatal(err)
	}
	for _, s := range res.Steps {
		fmt.Println(s.Name, s.State)
	}
	db, image, app := res.Steps[0], res.Steps[1], res.Steps[2]
	fmt.Println("db and image overlapped:", image.Start < db.End)
	fmt.Println("app started after both:", app.Start >= db.End && app.Start >= image.End)
	// Output:
	// db done
	// image done
	// app done
	// db and image overlapped: true
	// app started after both: true
}

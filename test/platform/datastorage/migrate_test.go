package datastorage

import "testing"

func TestMigrationsAreOrderedAndVersioned(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) < 2 {
		t.Fatalf("%d migrations", len(ms))
	}
	for i := 1; i < len(ms); i++ {
		if ms[i].version <= ms[i-1].version {
			t.Errorf("%s does not come after %s", ms[i].name, ms[i-1].name)
		}
	}
	if SchemaVersion() != ms[len(ms)-1].version {
		t.Errorf("SchemaVersion %d, want the last migration's %d", SchemaVersion(), ms[len(ms)-1].version)
	}
}

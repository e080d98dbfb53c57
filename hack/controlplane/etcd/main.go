// Command etcd is etcd's own entry point, wrapped in a module of ours because
// `go install go.etcd.io/etcd/server/v3` is refused: etcd's go.mod files carry replace directives.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() {
	etcdmain.Main(os.Args)
}

module github.com/pythia-pipe/pythia-pipe

go 1.26

require (
	github.com/expr-lang/expr v1.17.8
	gopkg.in/yaml.v3 v3.0.1
)

// Package chaos is the failure suite of a real three-broker cluster (make chaos): the orders
// example runs as a process through a fault proxy in front of each broker while brokers are
// killed, stopped, restarted one after another and cut off, in both delivery modes, and
// what it wrote is read back and checked. Its tests carry the chaos build tag: make test
// leaves them out. It has no code of its own.
package chaos

package pipeline

import "testing"

func BenchmarkParseOrders(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, diags, _ := parseFile(b, "pipelines/orders.yaml"); len(diags) > 0 {
			b.Fatal(diags.Err())
		}
	}
}

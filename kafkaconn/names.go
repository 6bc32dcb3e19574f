package kafkaconn

import (
	"strconv"
	"strings"

	"github.com/pythia-pipe/pythia-pipe/spec"
)

// TopicNameProblem says what is wrong with a Kafka topic name, or "" when it is valid. It is
// the one check of topic names: the source's topics, the sinks' and the DLQ's, the patterns of
// topic_allow and, at run time, the topics records compute.
func TopicNameProblem(name string) string {
	switch {
	case name == "":
		return "a topic name cannot be empty"
	case name == "." || name == "..":
		return "a topic cannot be named . or .."
	case len(name) > 249:
		return "a topic name has at most 249 characters"
	}
	for _, r := range name {
		if !(r == '.' || r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			problem := "topic " + strconv.Quote(name) + " has a character Kafka does not allow: use letters, digits, '.', '_' and '-'"
			if strings.Contains(name, ",") {
				problem += " (several topics? write a list: [" + strings.Join(strings.Fields(strings.ReplaceAll(name, ",", " ")), ", ") + "])"
			}
			return problem
		}
	}
	return ""
}

// CheckTopicName reports a topic name written in the file that Kafka would refuse; an absent
// one is left to the check of required fields.
func CheckTopicName(p *spec.Parser, v *spec.Value) {
	if msg := TopicNameProblem(v.Str); v.Set && msg != "" {
		p.Errorf(v.Pos, v.Path, "%s", msg)
	}
}

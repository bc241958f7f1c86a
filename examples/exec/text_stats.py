"""An `agent run --exec` program: reads the request input as JSON on stdin, writes the answer as
JSON on stdout (words, sentences and characters of "text"). One process per request.

    genesis-mesh agent run --dir nodes/support --agent-id stats-exec --capability text.stats \\
        --exec 'python3 examples/exec/text_stats.py'
"""
import json
import re
import sys

inp = json.load(sys.stdin)
text = inp.get("text") if isinstance(inp, dict) else None
if not isinstance(text, str):
    sys.stderr.write('the input needs "text": a string\n')
    sys.exit(2)
print(json.dumps({"words": len(text.split()), "sentences": len([s for s in re.split(r"[.!?]+", text) if s.strip()]),
                  "characters": len(text)}))

# make trace-check — the execution trace's picture (issue #16), outside
# `make test`: traces the demo, turns the trace into one self-contained
# HTML timeline (tools/trace_html.lua) and renders it in headless Chromium
# (Debian's chromium, installed by tools/deps.sh when missing) to
# $(BUILD)/trace.png; the same for examples/seeing_inside.lua (README's
# picture) to $(BUILD)/seeing_inside.png. The JSON checks themselves are in
# spec/trace_spec.lua (part of make test); trace_html.lua repeats them.

CHROMIUM ?= $(shell command -v chromium 2>/dev/null || command -v chromium-browser 2>/dev/null || echo chromium)
TRACE_DEMO_LIMIT ?= 600000

.PHONY: trace-check
trace-check: rock
	@sh tools/deps.sh chromium
	@eval "$$($(LUAROCKS) --tree $(ROCKS) path)"; \
	  GORO_TRACE=$(BUILD)/trace.json $(LUA) examples/demo.lua $(TRACE_DEMO_LIMIT) >/dev/null && \
	  $(LUA) tools/trace_html.lua $(BUILD)/trace.json $(BUILD)/trace.html && \
	  GORO_TRACE=$(BUILD)/seeing_inside.json $(LUA) examples/seeing_inside.lua >/dev/null && \
	  $(LUA) tools/trace_html.lua $(BUILD)/seeing_inside.json $(BUILD)/seeing_inside.html
	@for name in trace seeing_inside; do \
	  profile=$$(mktemp -d); \
	  $(CHROMIUM) --headless --no-sandbox --disable-gpu --disable-background-networking \
	    --disable-component-update --disable-sync --no-first-run --user-data-dir=$$profile \
	    --screenshot=$(BUILD)/$$name.png --window-size=1400,800 \
	    file://$(CURDIR)/$(BUILD)/$$name.html >$(BUILD)/chromium.log 2>&1; rc=$$?; \
	  rm -rf $$profile; \
	  if [ $$rc -ne 0 ] || [ ! -s $(BUILD)/$$name.png ]; then \
	    cat $(BUILD)/chromium.log; echo "trace-check: chromium could not render $(BUILD)/$$name.html" >&2; exit 1; fi; \
	  echo "trace-check: $(BUILD)/$$name.html rendered to $(BUILD)/$$name.png"; \
	done

"""What the pages show and how their forms read: plain Python over the services, no Reflex.

Read models (a page of jobs, a conflict's diff, a connection's detail), form parsing and the
labels and times they print live here, on the UI side, so services hold what the product
does and these hold how the dashboard presents it. Each is tested without a browser
(tests/integration/ui).
"""

-- wrk: POST /gifts, expecting 201 (anything else shows up as "Non-2xx" or in `errors`).
wrk.method = "POST"
wrk.path = "/gifts"
wrk.body = '{"amount": 1000, "message": "thank you"}'
wrk.headers["Content-Type"] = "application/json"

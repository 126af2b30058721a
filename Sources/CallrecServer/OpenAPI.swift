import Hummingbird
import NIOCore

/// `GET /openapi.yaml`: the OpenAPI 3.1 description of the API, kept true by
/// `OpenAPITests` (every path and method in it is exercised against the live server).
enum OpenAPIRoute {
    static func register(on router: Router<CallrecContext>) {
        router.get("/openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"], body: .init(byteBuffer: ByteBuffer(string: document)))
        }
    }

    static let document = #"""
        openapi: 3.1.0
        info:
          title: callrec
          version: "1"
          description: >
            Call recordings of an Asterisk PBX. Audio routes accept a signed URL
            (?exp=<unix seconds>&sig=<base64url HMAC-SHA256(secret, path + "\n" + exp)>) or a bearer
            token; the others a bearer token (HS256 JWT with sub, exp, role, company). Errors are
            {"error": {"code", "message"}}. A recording of another company answers 404, exactly like a
            missing one. A method a path does not list answers 405 with Allow.
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer, bearerFormat: JWT, description: "claims sub, exp, role (viewer, compliance, admin), company (required for viewer)"}
            signedURL: {type: apiKey, in: query, name: sig, description: "with exp=<unix seconds> beside it; GET and HEAD of audio, waveforms and export downloads only"}
          parameters:
            uniqueid:
              name: id
              in: path
              required: true
              description: an Asterisk uniqueid (1732467600.42, pbx1-1732467600.42); no leading dot, no '..'
              schema: {type: string, minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-](\.?[A-Za-z0-9_-])*\.?$'}
              example: "1767225600.1"
            file:
              name: file
              in: path
              required: true
              description: "<uniqueid> (the JSON), <uniqueid>.opus (Ogg Opus) or <uniqueid>.wav (16-bit PCM WAV)"
              schema:
                anyOf:
                  - {type: string, minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-](\.?[A-Za-z0-9_-])*\.?$'}
                  - {type: string, minLength: 6, maxLength: 133, pattern: '^[A-Za-z0-9_-](\.?[A-Za-z0-9_-])*\.?\.opus$'}
                  - {type: string, minLength: 5, maxLength: 132, pattern: '^[A-Za-z0-9_-](\.?[A-Za-z0-9_-])*\.?\.wav$'}
              example: "1767225600.1.opus"
            fileAsId:
              name: file
              in: path
              required: true
              description: the uniqueid itself (no .opus or .wav)
              schema: {type: string, minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_-](\.?[A-Za-z0-9_-])*\.?$'}
            exportId:
              name: id
              in: path
              required: true
              description: 32 hexadecimal digits, as POST /exports answered
              schema: {type: string, pattern: '^[0-9a-fA-F]{32}$'}
            quarantineId:
              name: id
              in: path
              required: true
              description: the id GET /quarantine lists
              schema: {type: integer, minimum: 1, maximum: 9223372036854775807}
            company:
              name: company
              in: path
              required: true
              description: any text of 1 to 128 characters but control characters (percent-encoded in the path)
              schema: {type: string, minLength: 1, maxLength: 128, pattern: '^[^\x00-\x1F\x7F-\x9F]+$'}
          schemas:
            TimeOrEmpty:
              description: a Time; empty is the same as absent
              anyOf: [{$ref: '#/components/schemas/Time'}, {type: string, maxLength: 0}]
            Time:
              description: an ISO-8601 instant (2026-11-24T17:00:00Z, 2026-11-24T14:00:00.250-03:00) or a date (2026-11-24) read in CALLREC_TZ
              type: string
              pattern: '^(?:(?:19[7-9][0-9]|20[0-9][0-9])-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)|02-(?:0[1-9]|1[0-9]|2[0-8]))|(?:19(?:7[26]|8[048]|9[26])|20(?:[02468][048]|[13579][26]))-02-29)(?:T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,9})?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9]))?$'
            Error:
              type: object
              required: [error]
              properties:
                error:
                  type: object
                  required: [code, message]
                  properties: {code: {type: string}, message: {type: string}}
            Recording:
              type: object
              required: [uniqueid, company, agent, lead_number, started_at, samples, sample_rate, channels, duration_ms, source, opus, silence, levels, legal_hold, parts]
              properties:
                uniqueid: {type: string}
                company: {type: [string, "null"]}
                agent: {type: [string, "null"]}
                lead_number: {type: [string, "null"]}
                started_at: {type: string, format: date-time}
                samples: {type: integer, minimum: 0}
                sample_rate: {type: integer, minimum: 1}
                channels: {type: integer, minimum: 1}
                duration_ms: {type: integer, minimum: 0}
                parts: {type: integer, minimum: 1, description: how many source files (MixMonitor appends) made it}
                source:
                  type: object
                  required: [format, bytes, sha256]
                  properties: {format: {type: string}, bytes: {type: integer}, sha256: {type: string, pattern: '^[0-9a-f]{64}$'}}
                opus:
                  type: object
                  required: [bytes, bitrate, sha256]
                  properties: {bytes: {type: integer}, bitrate: {type: integer}, sha256: {type: string, pattern: '^[0-9a-f]{64}$'}}
                silence:
                  type: object
                  required: [threshold_dbfs, min_ms, total_ms, ratio, longest_ms, leading_ms, trailing_ms, segments]
                  properties:
                    threshold_dbfs: {type: number}
                    min_ms: {type: integer}
                    total_ms: {type: integer}
                    ratio: {type: number}
                    longest_ms: {type: integer}
                    leading_ms: {type: integer}
                    trailing_ms: {type: integer}
                    segments: {type: array, items: {type: array, items: {type: integer}, minItems: 2, maxItems: 2}}
                levels:
                  type: object
                  required: [peak_dbfs, rms_dbfs, clipped_samples]
                  properties:
                    peak_dbfs: {type: [number, "null"]}
                    rms_dbfs: {type: [number, "null"]}
                    clipped_samples: {type: integer}
                legal_hold: {type: boolean}
            Page:
              type: object
              required: [items, next_cursor]
              properties:
                items: {type: array, items: {$ref: '#/components/schemas/Recording'}}
                next_cursor: {type: [string, "null"], description: "pass as cursor for the next page; null on the last"}
            Filter:
              description: a filter's value (empty is absent); at most 128 characters, no control characters
              type: string
              maxLength: 128
              pattern: '^[^\x00-\x1F\x7F-\x9F]*$'
            Quarantined:
              type: object
              required: [id, source_name, path, reason, bytes, at]
              properties:
                id: {type: integer}
                source_name: {type: string, description: "the file's name in the spool"}
                path: {type: string, description: "where it is kept, under the data directory"}
                reason: {type: string}
                sha256: {type: [string, "null"]}
                bytes: {type: integer}
                at: {type: string, format: date-time}
            Metadata:
              type: object
              additionalProperties: false
              description: >
                A field left out keeps its current value (whatever its origin: the spool path, an earlier
                PUT); null clears it. A company-scoped token sets its own company only (another is 403) and
                sees no other company's call (404).
              properties:
                company: {type: [string, "null"], minLength: 1, maxLength: 128, pattern: '^[^\x00-\x1F\x7F-\x9F]+$'}
                agent: {type: [string, "null"], minLength: 1, maxLength: 128, pattern: '^[^\x00-\x1F\x7F-\x9F]+$'}
                lead_number: {type: [string, "null"], minLength: 1, maxLength: 128, pattern: '^[^\x00-\x1F\x7F-\x9F]+$'}
            Job:
              type: object
              required: [id, status, from, to, progress, created_at]
              properties:
                id: {type: string, pattern: '^[0-9a-f]{32}$'}
                status: {type: string, enum: [queued, running, completed, failed, expired]}
                from: {type: string, format: date-time}
                to: {type: string, format: date-time}
                company: {type: [string, "null"]}
                progress: {type: object, required: [done, total], properties: {done: {type: integer}, total: {type: integer}}}
                created_at: {type: string, format: date-time}
                finished_at: {type: [string, "null"], format: date-time}
                bytes: {type: [integer, "null"]}
                sha256: {type: [string, "null"]}
                error: {type: [string, "null"]}
                download: {type: [string, "null"]}
                recipient: {type: [string, "null"], description: "the age recipient the ZIP is sealed for (its download is then an age file)"}
            Retention:
              type: object
              description: company → days
              additionalProperties: {type: integer}
          headers:
            ContentRange: {description: "bytes a-b/size on 206; bytes */size on 416", schema: {type: string}}
            ETag: {schema: {type: string}}
            Allow: {schema: {type: string}}
          responses:
            Audio:
              description: the whole file (audio/ogg for .opus, audio/wav for .wav) or the recording's JSON
              headers: {ETag: {$ref: '#/components/headers/ETag'}}
              content:
                audio/ogg: {schema: {type: string, format: binary}}
                audio/wav: {schema: {type: string, format: binary}}
                application/json: {schema: {$ref: '#/components/schemas/Recording'}}
            Partial:
              description: a range (Content-Range), or several as multipart/byteranges
              content:
                audio/ogg: {schema: {type: string, format: binary}}
                audio/wav: {schema: {type: string, format: binary}}
                application/zip: {schema: {type: string, format: binary}}
                multipart/byteranges: {schema: {type: string, format: binary}}
            NotModified: {description: "not modified (If-None-Match, If-Modified-Since)"}
            PreconditionFailed: {description: "If-Match or If-Unmodified-Since failed"}
            BadRequest: {description: "a malformed request: code invalid_uniqueid, invalid_time, invalid_limit, invalid_cursor, invalid_json, unknown_field, unknown_parameter, reason_required, …", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Unauthorized: {description: "no credentials, or invalid ones: codes unauthorized, expired, bad_signature, missing_claim", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Forbidden: {description: "the token's role may not do this", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            NotFound: {description: "no such recording, or one the token may not see", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Conflict: {description: conflict, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Gone: {description: the export is no longer kept, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            TooLarge: {description: the body is larger than 64 KiB, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Unsatisfiable:
              description: the range lies past the end
              headers: {Content-Range: {$ref: '#/components/headers/ContentRange'}}
              content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}
            Unavailable: {description: the recording's audio is not on disk, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
        paths:
          /healthz:
            get:
              summary: liveness
              security: []
              responses:
                "200":
                  description: ok
                  content:
                    application/json:
                      schema: {type: object, required: [status, recordings, backlog], properties: {status: {const: ok}, recordings: {type: integer}, backlog: {type: integer}}}
          /metrics:
            get:
              summary: Prometheus text
              security: []
              responses: {"200": {description: metrics, content: {text/plain: {schema: {type: string}}}}}
          /openapi.yaml:
            get:
              summary: this document
              security: []
              responses: {"200": {description: OpenAPI 3.1, content: {application/yaml: {schema: {type: string}}}}}
          /recordings:
            get:
              summary: a page of recordings, in start order
              security: [{bearer: []}]
              parameters:
                - {name: from, in: query, schema: {$ref: '#/components/schemas/TimeOrEmpty'}}
                - {name: to, in: query, description: exclusive, schema: {$ref: '#/components/schemas/TimeOrEmpty'}}
                - {name: company, in: query, description: "a company-scoped token sees its own company only; empty is absent", schema: {$ref: '#/components/schemas/Filter'}}
                - {name: agent, in: query, schema: {$ref: '#/components/schemas/Filter'}}
                - {name: lead_number, in: query, schema: {$ref: '#/components/schemas/Filter'}}
                - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
                - {name: cursor, in: query, description: "the next_cursor of the previous page, as it was (opaque; anything else is a 400)", schema: {type: string, pattern: '^[A-Za-z0-9_-]+$'}}
              responses:
                "200": {description: a page, content: {application/json: {schema: {$ref: '#/components/schemas/Page'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
            head:
              summary: the same headers as GET, no body
              security: [{bearer: []}]
              parameters:
                - {name: from, in: query, schema: {$ref: '#/components/schemas/TimeOrEmpty'}}
                - {name: to, in: query, description: exclusive, schema: {$ref: '#/components/schemas/TimeOrEmpty'}}
                - {name: company, in: query, description: "a company-scoped token sees its own company only; empty is absent", schema: {$ref: '#/components/schemas/Filter'}}
                - {name: agent, in: query, schema: {$ref: '#/components/schemas/Filter'}}
                - {name: lead_number, in: query, schema: {$ref: '#/components/schemas/Filter'}}
                - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
                - {name: cursor, in: query, description: "the next_cursor of the previous page, as it was (opaque; anything else is a 400)", schema: {type: string, pattern: '^[A-Za-z0-9_-]+$'}}
              responses:
                "200": {description: a page}
                "400": {description: a malformed request}
                "401": {description: no or invalid credentials}
          /recordings/{file}:
            parameters: [{$ref: '#/components/parameters/file'}]
            get:
              summary: "<uniqueid>.opus: Ogg Opus; <uniqueid>.wav: 16-bit PCM WAV; <uniqueid>: the recording's JSON (a token only)"
              description: Audio honours Range (bytes=a-b, a-, -n; several ranges as multipart/byteranges), If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since.
              security: [{bearer: []}, {signedURL: []}]
              responses:
                "200": {$ref: '#/components/responses/Audio'}
                "206": {$ref: '#/components/responses/Partial'}
                "304": {$ref: '#/components/responses/NotModified'}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "404": {$ref: '#/components/responses/NotFound'}
                "412": {$ref: '#/components/responses/PreconditionFailed'}
                "416": {$ref: '#/components/responses/Unsatisfiable'}
                "503": {$ref: '#/components/responses/Unavailable'}
            head:
              summary: the same headers as GET, no body
              security: [{bearer: []}, {signedURL: []}]
              responses:
                "200": {description: headers}
                "206": {description: headers of a range}
                "304": {description: not modified}
                "400": {description: a malformed uniqueid}
                "401": {description: no or invalid credentials}
                "404": {description: not found}
                "412": {description: precondition failed}
                "416": {description: unsatisfiable range}
                "503": {description: the audio is not on disk}
            delete:
              summary: delete a recording now (admin); 409 under legal hold
              security: [{bearer: []}]
              parameters: [{$ref: '#/components/parameters/fileAsId'}]
              responses:
                "204": {description: deleted}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
                "409": {$ref: '#/components/responses/Conflict'}
          /recordings/{id}/waveform.json:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            get:
              summary: waveform peaks (BBC audiowaveform JSON v2, 8-bit)
              security: [{bearer: []}, {signedURL: []}]
              responses:
                "200": {description: peaks, content: {application/json: {schema: {type: object, required: [version, bits, data], properties: {version: {const: 2}, bits: {const: 8}, data: {type: array, items: {type: integer}}}}}}}
                "304": {$ref: '#/components/responses/NotModified'}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "404": {$ref: '#/components/responses/NotFound'}
            head:
              summary: the same headers as GET, no body
              security: [{bearer: []}, {signedURL: []}]
              responses:
                "200": {description: headers}
                "304": {description: not modified}
                "400": {description: a malformed uniqueid}
                "401": {description: no or invalid credentials}
                "404": {description: not found}
          /recordings/{id}/metadata:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            put:
              summary: set company, agent, lead number (admin); may come before the audio
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Metadata'}}}}
              responses:
                "200": {description: the merged metadata, content: {application/json: {schema: {$ref: '#/components/schemas/Metadata'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
                "413": {$ref: '#/components/responses/TooLarge'}
          /recordings/{id}/hold:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            put:
              summary: put under legal hold (compliance, admin)
              security: [{bearer: []}]
              requestBody:
                required: true
                content: {application/json: {schema: {type: object, additionalProperties: false, required: [reason], properties: {reason: {type: string, pattern: '\S'}}}}}
              responses:
                "200": {description: the recording, content: {application/json: {schema: {$ref: '#/components/schemas/Recording'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
                "413": {$ref: '#/components/responses/TooLarge'}
            delete:
              summary: release a legal hold (compliance, admin); the body, with a reason, is optional
              security: [{bearer: []}]
              requestBody:
                required: false
                content: {application/json: {schema: {type: object, additionalProperties: false, properties: {reason: {type: [string, "null"]}}}}}
              responses:
                "200": {description: the recording, content: {application/json: {schema: {$ref: '#/components/schemas/Recording'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
                "413": {$ref: '#/components/responses/TooLarge'}
          /exports:
            get:
              summary: the console's export page (HTML), for a signed-in compliance or admin user
              description: A page for people, not an API call. Without a console session it redirects to /login.
              security: []
              responses:
                "200": {description: the page, content: {text/html: {schema: {type: string}}}}
                "302": {description: "not signed in: to /login?next=/exports", headers: {Location: {required: true, schema: {type: string}}}}
                "403": {$ref: '#/components/responses/Forbidden'}
            post:
              summary: start a compliance export of a time range (compliance, admin); 202 with the job
              description: from must be before to.
              security: [{bearer: []}]
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      additionalProperties: false
                      required: [from, to]
                      properties:
                        from: {$ref: '#/components/schemas/Time'}
                        to: {$ref: '#/components/schemas/Time'}
                        company: {type: [string, "null"], minLength: 1}
                        recipient: {type: [string, "null"], description: "an age X25519 recipient (age1…): the ZIP is sealed for it in the age format (`age -d -i IDENTITY` opens it); a bad one is 400 invalid_recipient"}
              responses:
                "202":
                  description: the job
                  headers: {Location: {description: "/exports/<id>", required: true, schema: {type: string}}}
                  content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "413": {$ref: '#/components/responses/TooLarge'}
                "429": {description: "too_many_exports: 2 queued or running, or 20 kept, exports of this principal", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "507": {description: "insufficient_storage: the export would leave less than 256 MiB free", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
          /exports/{id}:
            parameters: [{$ref: '#/components/parameters/exportId'}]
            get:
              summary: the job's status and progress (compliance, admin)
              security: [{bearer: []}]
              responses:
                "200": {description: the job, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
          /exports/{id}/download:
            parameters: [{$ref: '#/components/parameters/exportId'}]
            get:
              summary: the ZIP, with Range so a broken download resumes (compliance, admin, or a signed URL)
              security: [{bearer: []}, {signedURL: []}]
              responses:
                "200":
                  description: the ZIP (application/octet-stream, an age file, when the job has a recipient)
                  content:
                    application/zip: {schema: {type: string, format: binary}}
                    application/octet-stream: {schema: {type: string, format: binary}}
                "206": {$ref: '#/components/responses/Partial'}
                "304": {$ref: '#/components/responses/NotModified'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
                "409": {$ref: '#/components/responses/Conflict'}
                "410": {$ref: '#/components/responses/Gone'}
                "412": {$ref: '#/components/responses/PreconditionFailed'}
                "416": {$ref: '#/components/responses/Unsatisfiable'}
            head:
              summary: the same headers as GET, no body
              security: [{bearer: []}, {signedURL: []}]
              responses:
                "200": {description: headers}
                "206": {description: headers of a range}
                "304": {description: not modified}
                "401": {description: no or invalid credentials}
                "403": {description: forbidden}
                "404": {description: not found}
                "409": {description: not ready}
                "410": {description: no longer kept}
                "412": {description: precondition failed}
                "416": {description: unsatisfiable range}
          /holds:
            post:
              summary: legal hold by query (company, lead_number, from, to; at least one) with a reason (compliance, admin)
              security: [{bearer: []}]
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      type: object
                      additionalProperties: false
                      required: [reason]
                      description: a null field is an absent one; at least one of company, lead_number, from, to is given
                      anyOf:
                        - {required: [company], properties: {company: {type: string, minLength: 1}}}
                        - {required: [lead_number], properties: {lead_number: {type: string, minLength: 1}}}
                        - {required: [from], properties: {from: {type: string}}}
                        - {required: [to], properties: {to: {type: string}}}
                      properties:
                        reason: {type: string, pattern: '\S'}
                        company: {type: [string, "null"], minLength: 1}
                        lead_number: {type: [string, "null"], minLength: 1}
                        from: {anyOf: [{$ref: '#/components/schemas/Time'}, {type: "null"}]}
                        to: {anyOf: [{$ref: '#/components/schemas/Time'}, {type: "null"}]}
              responses:
                "200": {description: the recordings now held, content: {application/json: {schema: {type: object, required: [held], properties: {held: {type: array, items: {type: string}}}}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "413": {$ref: '#/components/responses/TooLarge'}
          /erasures:
            post:
              summary: LGPD erasure of a phone number (admin); held recordings are kept and reported
              security: [{bearer: []}]
              requestBody:
                required: true
                content: {application/json: {schema: {type: object, additionalProperties: false, required: [lead_number], properties: {lead_number: {type: string, minLength: 1, maxLength: 64}}}}}
              responses:
                "200":
                  description: what was erased
                  content:
                    application/json:
                      schema:
                        type: object
                        required: [count, audio_seconds, bytes, uniqueids, held]
                        properties: {count: {type: integer}, audio_seconds: {type: integer}, bytes: {type: integer}, uniqueids: {type: array, items: {type: string}}, held: {type: array, items: {type: string}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "413": {$ref: '#/components/responses/TooLarge'}
          /retention:
            get:
              summary: per-company retention overrides, in days (compliance, admin)
              security: [{bearer: []}]
              responses:
                "200": {description: the overrides, content: {application/json: {schema: {$ref: '#/components/schemas/Retention'}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
          /retention/{company}:
            parameters: [{$ref: '#/components/parameters/company'}]
            put:
              summary: set a company's retention in days (admin)
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {type: object, additionalProperties: false, required: [days], properties: {days: {type: integer, minimum: 0, maximum: 36500}}}}}}
              responses:
                "200": {description: the overrides, content: {application/json: {schema: {$ref: '#/components/schemas/Retention'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "413": {$ref: '#/components/responses/TooLarge'}
            delete:
              summary: back to CALLREC_RETENTION_DAYS (admin)
              security: [{bearer: []}]
              responses:
                "200": {description: the overrides, content: {application/json: {schema: {$ref: '#/components/schemas/Retention'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "413": {$ref: '#/components/responses/TooLarge'}
          /quarantine:
            get:
              summary: files that could not be ingested, with why (compliance, admin without a company)
              security: [{bearer: []}]
              responses:
                "200": {description: the quarantined files, content: {application/json: {schema: {type: object, required: [items], properties: {items: {type: array, items: {$ref: '#/components/schemas/Quarantined'}}}}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
          /quarantine/{id}:
            parameters: [{$ref: '#/components/parameters/quarantineId'}]
            get:
              summary: one quarantined file and why (compliance, admin without a company)
              security: [{bearer: []}]
              responses:
                "200": {description: the file, content: {application/json: {schema: {$ref: '#/components/schemas/Quarantined'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
          /quarantine/{id}/retry:
            parameters: [{$ref: '#/components/parameters/quarantineId'}]
            post:
              summary: put the file back into the spool to be ingested again, never over a file there (admin without a company)
              security: [{bearer: []}]
              responses:
                "202": {description: where it went, content: {application/json: {schema: {type: object, required: [spool_path], properties: {spool_path: {type: string}}}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
                "409": {description: "cannot_retry: the file cannot be put back (a file of its name is in the spool)", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "503": {description: "no_spool: this server watches no spool", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
        """#
}

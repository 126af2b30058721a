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
            missing one. A method a path does not list answers 405 with Allow. A revoked bearer token
            answers 401 revoked; a request with a bearer token may answer 503 unavailable while the
            server cannot read the token revocations from its catalog (they are read before the first
            token is admitted after a start).
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer, bearerFormat: JWT, description: "claims sub, exp, role (viewer, compliance, admin, recorder), company (required for viewer and recorder); optional jti (revocable alone: POST /tokens/revocations) and iat (a revocation of the subject refuses tokens issued until it, and those without iat)"}
            consoleSession: {type: apiKey, in: cookie, name: callrec_session, description: "the console's session cookie (POST /login); state-changing requests also need X-CSRF-Token (the page's body data-csrf) and an Origin of this server"}
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
            LiveCall:
              description: a call being recorded now (a spool file MixMonitor is still writing, or, with CALLREC_AMI, a call whose MixMonitorStart Asterisk reported and whose hangup it has not)
              type: object
              required: [uniqueid, company, agent, lead_number, started_at, duration_ms, updated_at, paused]
              properties:
                uniqueid: {type: string}
                company: {type: [string, "null"], description: "from the spool name; null when not known yet (then only unscoped tokens see the call)"}
                agent: {type: [string, "null"]}
                lead_number: {type: [string, "null"]}
                started_at: {type: string, format: date-time, description: "the uniqueid's epoch, else when the file was first seen"}
                duration_ms: {type: integer, minimum: 0, description: "recorded so far: from the file's size and format, else from its last write"}
                updated_at: {type: string, format: date-time, description: the last write seen}
                paused: {type: boolean, description: "a PCI pause (POST /recordings/{id}/pause) is on; always false without CALLREC_AMI"}
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
              required: [uniqueid, company, agent, lead_number, started_at, samples, sample_rate, channels, duration_ms, source, opus, silence, levels, legal_hold, parts, pauses, gaps, answered_at, ended_at, hangup_cause, speakers, overtalk_ms, dead_air_ms, talk_ratio, lone_leg]
              properties:
                uniqueid: {type: string}
                company: {type: [string, "null"]}
                agent: {type: [string, "null"]}
                lead_number: {type: [string, "null"]}
                started_at: {type: string, format: date-time}
                samples: {type: integer, minimum: 0}
                sample_rate: {type: integer, minimum: 1}
                channels: {type: integer, minimum: 1, maximum: 2}
                duration_ms: {type: integer, minimum: 0}
                parts: {type: integer, minimum: 1, description: "how many source files made it (MixMonitor appends, r()/t() legs, a verified mix)"}
                speakers:
                  description: "two-channel recordings: one entry per channel (channel 0 = read from the recorded channel); null for mono"
                  type: [array, "null"]
                  items:
                    type: object
                    required: [channel, role, talk_ms, longest_talk_ms, interruptions, zero_runs, peak_dbfs, rms_dbfs]
                    properties:
                      channel: {type: integer, minimum: 0, maximum: 1}
                      role: {enum: [agent, customer]}
                      talk_ms: {type: integer, minimum: 0}
                      longest_talk_ms: {type: integer, minimum: 0}
                      interruptions: {type: integer, minimum: 0}
                      zero_runs: {type: array, items: {type: array, items: {type: integer}, minItems: 2, maxItems: 2}}
                      peak_dbfs: {type: [number, "null"]}
                      rms_dbfs: {type: [number, "null"]}
                overtalk_ms: {type: [integer, "null"], minimum: 0, description: both channels talking; null for mono}
                dead_air_ms: {type: [integer, "null"], minimum: 0, description: neither channel talking; null for mono}
                talk_ratio: {type: [number, "null"], minimum: 0, maximum: 1, description: "the agent's share of all talk; null for mono or when nobody talks"}
                lone_leg: {type: [string, "null"], enum: [read, write, null], description: "a mono recording of one r()/t() leg whose partner never arrived"}
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
                pauses:
                  description: PCI pauses (AMI MixMonitorMute) on the recording's timeline; empty when AMI did not see the call
                  type: array
                  items:
                    type: object
                    required: [start_ms, end_ms, by, requested_at, ended_by, zeros]
                    properties:
                      start_ms: {type: integer, minimum: 0}
                      end_ms: {type: integer, minimum: 0}
                      by: {type: [string, "null"], description: "who asked (the token's sub); null for a mute callrec did not ask for"}
                      requested_at: {type: [string, "null"], format: date-time}
                      ended_by: {type: [string, "null"], description: "who ended it: a sub, max_pause (CALLREC_MAX_PAUSE), hangup, asterisk"}
                      zeros: {type: [boolean, "null"], description: "the audio holds exact zeros there (a PCM mute); false flags a pause not in the audio; null when not checkable"}
                gaps:
                  description: call time missing from the file (MixMonitor option b drops what is not bridged)
                  type: array
                  items:
                    type: object
                    required: [at_ms, lost_ms, why]
                    properties:
                      at_ms: {type: integer, minimum: 0}
                      lost_ms: {type: integer, minimum: 0}
                      why: {type: string, enum: [not_bridged, unexplained]}
                answered_at: {type: [string, "null"], format: date-time, description: "first BridgeEnter; null when AMI did not see the call"}
                ended_at: {type: [string, "null"], format: date-time, description: "Hangup; null when AMI did not see the call"}
                hangup_cause: {type: [integer, "null"], description: Asterisk's hangup cause (Q.850)}
            PauseAnswer:
              type: object
              required: [uniqueid, paused, pause]
              properties:
                uniqueid: {type: string}
                paused: {type: boolean}
                pause:
                  type: [object, "null"]
                  required: [by, requested_at, started_at, ended_at, ended_by]
                  properties:
                    by: {type: [string, "null"]}
                    requested_at: {type: [string, "null"], format: date-time}
                    started_at: {type: string, format: date-time}
                    ended_at: {type: [string, "null"], format: date-time}
                    ended_by: {type: [string, "null"]}
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
            TokenRevocation:
              type: object
              description: one token revoked by its jti, or every token of a subject issued until revoked_at (and those without iat)
              required: [id, jti, sub, revoked_at, kept_until, actor, company]
              properties:
                id: {type: integer}
                jti: {type: [string, "null"], description: "the revoked token's jti (null for a subject's revocation)"}
                sub: {type: [string, "null"], description: "the revoked subject (null for a token's revocation)"}
                revoked_at: {type: string, format: date-time, description: "for a subject: tokens whose iat is at or before this second are refused"}
                kept_until: {type: [string, "null"], format: date-time, description: "a token's revocation is kept until its exp (366 days when not given); null: a subject's, kept"}
                actor: {type: string, description: "the sub of the admin token that revoked it, or cli:<user>"}
                company: {type: [string, "null"], description: "the company of the revoking token (a company-scoped admin lists only its company's)"}
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
            BadRequest: {description: "a malformed request: code invalid_uniqueid, invalid_time, invalid_limit, invalid_cursor, invalid_json, unknown_field, unknown_parameter, reason_required, invalid_jti, invalid_sub, invalid_exp, …", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
            Unauthorized: {description: "no credentials, or invalid ones: codes unauthorized, expired, bad_signature, missing_claim, invalid_token, revoked", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
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
            AMIUnavailable: {description: "ami_unavailable: AMI is down or not configured, or Asterisk did not confirm; the call is not paused (or not resumed)", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
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
            # One list for GET and HEAD (path-level parameters apply to both).
            parameters:
              - {name: from, in: query, schema: {$ref: '#/components/schemas/TimeOrEmpty'}}
              - {name: to, in: query, description: exclusive, schema: {$ref: '#/components/schemas/TimeOrEmpty'}}
              - {name: company, in: query, description: "a company-scoped token sees its own company only; empty is absent", schema: {$ref: '#/components/schemas/Filter'}}
              - {name: agent, in: query, schema: {$ref: '#/components/schemas/Filter'}}
              - {name: lead_number, in: query, schema: {$ref: '#/components/schemas/Filter'}}
              - {name: limit, in: query, description: "1…1000, default 100; empty is absent", schema: {anyOf: [{type: integer, minimum: 1, maximum: 1000, default: 100}, {const: ""}]}}
              - {name: cursor, in: query, description: "the next_cursor of the previous page, as it was (opaque; anything else is a 400)", schema: {type: string, pattern: '^[A-Za-z0-9_-]+$'}}
              - {name: min_duration_ms, in: query, description: "only recordings at least this long; empty is absent", schema: {anyOf: [{type: integer, minimum: 0, maximum: 1000000000}, {const: ""}]}}
              - {name: held, in: query, description: "true: only recordings under legal hold; false or empty: all", schema: {enum: ["true", "false", ""]}}
              - {name: min_overtalk_ms, in: query, description: "two-channel recordings with at least this much overtalk (mono ones never match)", schema: {type: integer, minimum: 0}}
              - {name: min_dead_air_ms, in: query, description: "two-channel recordings with at least this much dead air", schema: {type: integer, minimum: 0}}
              - {name: min_talk_ratio, in: query, description: "two-channel recordings whose agent's share of talk is at least this", schema: {type: number, minimum: 0, maximum: 1}}
              - {name: max_talk_ratio, in: query, description: "two-channel recordings whose agent's share of talk is at most this", schema: {type: number, minimum: 0, maximum: 1}}
              - {name: channels, in: query, schema: {enum: ["1", "2"]}}
            get:
              summary: a page of recordings, in start order
              security: [{bearer: []}]
              responses:
                "200": {description: a page, content: {application/json: {schema: {$ref: '#/components/schemas/Page'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
            head:
              summary: the same headers as GET, no body
              security: [{bearer: []}]
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
              description: >
                Without pixels, the stored full-resolution peaks (50 pixels a second). With pixels=N,
                min/max reduced to N columns that evenly span the recording (each column the least
                min and greatest max of the stored pixels it covers; samples_per_pixel their mean
                width, rounded); a recording with no more than N stored pixels is answered as stored.
                Channels are interleaved per column as audiowaveform writes them (channels 2:
                min0, max0, min1, max1, …). A signed URL's answer carries Access-Control-Allow-Origin: *.
              security: [{bearer: []}, {signedURL: []}]
              parameters:
                - {name: pixels, in: query, description: "columns wanted, 1…8192; anything else is a 400 (invalid_pixels)", schema: {type: integer, minimum: 1, maximum: 8192}}
              responses:
                "200": {description: peaks, content: {application/json: {schema: {type: object, required: [version, channels, bits, length, data], properties: {version: {const: 2}, channels: {type: integer, minimum: 1}, sample_rate: {type: integer}, samples_per_pixel: {type: integer}, bits: {const: 8}, length: {type: integer, minimum: 0}, data: {type: array, items: {type: integer}}}}}}}
                "304": {$ref: '#/components/responses/NotModified'}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "404": {$ref: '#/components/responses/NotFound'}
            head:
              summary: the same headers as GET, no body
              security: [{bearer: []}, {signedURL: []}]
              parameters:
                - {name: pixels, in: query, schema: {type: integer, minimum: 1, maximum: 8192}}
              responses:
                "200": {description: headers}
                "304": {description: not modified}
                "400": {description: a malformed uniqueid or pixels}
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
          /recordings/{id}/pause:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            post:
              summary: PCI pause of a call being recorded now (recorder, admin; company-scoped)
              description: >
                AMI MixMonitorMute (Direction both, State 1) on the call's channel. 200 once Asterisk
                confirmed it and the pause is stored; pausing a paused call answers its open pause.
                A pause left open is resumed after CALLREC_MAX_PAUSE.
              security: [{bearer: []}]
              responses:
                "200": {description: paused, content: {application/json: {schema: {$ref: '#/components/schemas/PauseAnswer'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {description: "no such call being recorded now, or one the token may not see", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "503": {$ref: '#/components/responses/AMIUnavailable'}
          /recordings/{id}/resume:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            post:
              summary: end the PCI pause of a call being recorded now (recorder, admin; company-scoped)
              description: AMI MixMonitorMute State 0; 200 once Asterisk confirmed it (pause is null when none was open).
              security: [{bearer: []}]
              responses:
                "200": {description: resumed, content: {application/json: {schema: {$ref: '#/components/schemas/PauseAnswer'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {description: "no such call being recorded now, or one the token may not see", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "503": {$ref: '#/components/responses/AMIUnavailable'}
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
          /tokens/revocations:
            get:
              summary: the token revocations in force (admin; a company-scoped admin sees those its company's tokens made)
              security: [{bearer: []}]
              responses:
                "200": {description: the revocations, oldest first, content: {application/json: {schema: {type: object, required: [items], properties: {items: {type: array, items: {$ref: '#/components/schemas/TokenRevocation'}}}}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
            post:
              summary: revoke one bearer token by its jti (any admin), or every token of a subject issued until now (an admin token without a company); in force at once, audited as token.revoke
              security: [{bearer: []}]
              requestBody:
                required: true
                content:
                  application/json:
                    schema:
                      oneOf:
                        - {type: object, additionalProperties: false, required: [jti], properties: {jti: {type: string, minLength: 1, maxLength: 256, pattern: '^[^\x00-\x1F\x7F-\x9F]+$'}, exp: {type: [integer, "null"], minimum: 1, maximum: 253402300799, description: "the token's exp (unix seconds): the revocation is kept until then (null or absent: 366 days)"}}}
                        - {type: object, additionalProperties: false, required: [sub], properties: {sub: {type: string, minLength: 1, maxLength: 256, pattern: '^[^\x00-\x1F\x7F-\x9F]+$'}}}
              responses:
                "201": {description: the revocation as stored, content: {application/json: {schema: {$ref: '#/components/schemas/TokenRevocation'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "413": {$ref: '#/components/responses/TooLarge'}
          /console/api/recordings:
            get:
              summary: the console's page of recordings (GET /recordings for the session's user; same parameters)
              security: [{consoleSession: []}]
              responses:
                "200": {description: a page, content: {application/json: {schema: {$ref: '#/components/schemas/Page'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
          /console/api/recordings/{id}:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            get:
              summary: one recording's JSON for the session's user (the player reads its speakers' roles)
              security: [{consoleSession: []}]
              responses:
                "200": {description: the recording, content: {application/json: {schema: {$ref: '#/components/schemas/Recording'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "404": {$ref: '#/components/responses/NotFound'}
          /console/api/calls/live:
            get:
              summary: GET /calls/live for the session's user
              security: [{consoleSession: []}]
              responses:
                "200": {description: the calls, content: {application/json: {schema: {type: object, required: [calls], properties: {calls: {type: array, items: {$ref: '#/components/schemas/LiveCall'}}}}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
          /console/api/events:
            get:
              summary: GET /events for the session's user; ends when the session is signed out, expires or its account is disabled (checked at each heartbeat), and at once on POST /logout
              security: [{consoleSession: []}]
              responses:
                "200": {description: the stream, content: {text/event-stream: {schema: {type: string}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "406": {description: "not_acceptable: the request did not accept text/event-stream", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "429": {description: "too_many_streams: 4 streams of this session are open", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "503": {description: "too_many_streams: the server has 64 streams open", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
          /console/api/exports:
            post:
              summary: POST /exports for the session's user (compliance, admin; X-CSRF-Token)
              security: [{consoleSession: []}]
              requestBody: {required: true, content: {application/json: {schema: {type: object}}}}
              responses:
                "202": {description: the job, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                "400": {$ref: '#/components/responses/BadRequest'}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
          /console/api/exports/{id}:
            parameters: [{$ref: '#/components/parameters/exportId'}]
            get:
              summary: GET /exports/<id> for the session's user
              security: [{consoleSession: []}]
              responses:
                "200": {description: the job, content: {application/json: {schema: {$ref: '#/components/schemas/Job'}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
          /console/api/exports/{id}/download:
            parameters: [{$ref: '#/components/parameters/exportId'}]
            get:
              summary: GET /exports/<id>/download for the session's user
              security: [{consoleSession: []}]
              responses:
                "200": {description: the ZIP, content: {application/zip: {schema: {type: string, format: binary}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
                "409": {$ref: '#/components/responses/Conflict'}
                "410": {$ref: '#/components/responses/Gone'}
          /console/api/quarantine/{id}/retry:
            parameters: [{$ref: '#/components/parameters/quarantineId'}]
            post:
              summary: POST /quarantine/<id>/retry for the session's user (admin; X-CSRF-Token)
              security: [{consoleSession: []}]
              responses:
                "202": {description: put back, content: {application/json: {schema: {type: object}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "404": {$ref: '#/components/responses/NotFound'}
          /player.js:
            get:
              summary: the <callrec-player> custom element for the CRM's pages (docs/crm-guide.md)
              description: A classic script, no dependencies, Access-Control-Allow-Origin *, ETag.
              security: []
              responses:
                "200": {description: the script, content: {text/javascript: {schema: {type: string}}}}
                "304": {$ref: '#/components/responses/NotModified'}
          /calls/live:
            get:
              summary: calls being recorded now (viewer, compliance, admin; company-scoped like recordings)
              security: [{bearer: []}]
              responses:
                "200": {description: the calls, oldest first, content: {application/json: {schema: {type: object, required: [calls], properties: {calls: {type: array, items: {$ref: '#/components/schemas/LiveCall'}}}}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
          /events:
            get:
              summary: Server-Sent Events of live calls and of recordings added or changed (viewer, compliance, admin)
              description: >
                Needs Accept: text/event-stream (else 406). Opens with "retry: 3000" and an event
                "calls" ({"calls": [LiveCall…]}, as GET /calls/live); then "calls" again whenever the
                live calls change (at most about once a second while a call grows), "recording" (a
                recording's JSON, as GET /recordings/<uniqueid>) when one the token may see is added
                or changed, and a ": heartbeat" comment every 15 s. Company-scoped like the
                recordings. Ends when the token expires (checked at each event and heartbeat). At most
                4 streams per token subject (429) and 64 in all (503), code too_many_streams.
              security: [{bearer: []}]
              responses:
                "200": {description: the stream, content: {text/event-stream: {schema: {type: string}}}}
                "401": {$ref: '#/components/responses/Unauthorized'}
                "403": {$ref: '#/components/responses/Forbidden'}
                "406": {description: "not_acceptable: the request did not accept text/event-stream", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "429": {description: "too_many_streams: 4 streams of this token subject are open", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
                "503": {description: "too_many_streams: the server has 64 streams open", content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
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

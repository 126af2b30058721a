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
            {"error": {"code", "message"}}. A recording of another company answers 404.
        components:
          securitySchemes:
            bearer: {type: http, scheme: bearer, bearerFormat: JWT}
            signedURL: {type: apiKey, in: query, name: sig}
          parameters:
            uniqueid: {name: id, in: path, required: true, schema: {type: string, pattern: '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$'}}
            file: {name: file, in: path, required: true, description: "<uniqueid>, <uniqueid>.opus or <uniqueid>.wav", schema: {type: string}}
          schemas:
            Error:
              type: object
              required: [error]
              properties:
                error: {type: object, required: [code, message], properties: {code: {type: string}, message: {type: string}}}
            Recording:
              type: object
              required: [uniqueid, started_at, samples, sample_rate, channels, duration_ms, source, opus, silence, levels, legal_hold]
              properties:
                uniqueid: {type: string}
                company: {type: [string, "null"]}
                agent: {type: [string, "null"]}
                lead_number: {type: [string, "null"]}
                started_at: {type: string, format: date-time}
                samples: {type: integer}
                sample_rate: {type: integer}
                channels: {type: integer}
                duration_ms: {type: integer}
                parts: {type: integer}
                source: {type: object, properties: {format: {type: string}, bytes: {type: integer}, sha256: {type: string}}}
                opus: {type: object, properties: {bytes: {type: integer}, bitrate: {type: integer}, sha256: {type: string}}}
                silence:
                  type: object
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
                next_cursor: {type: [string, "null"]}
            Metadata:
              type: object
              properties:
                company: {type: [string, "null"]}
                agent: {type: [string, "null"]}
                lead_number: {type: [string, "null"]}
          responses:
            Error: {description: error, content: {application/json: {schema: {$ref: '#/components/schemas/Error'}}}}
        paths:
          /healthz:
            get: {summary: liveness, responses: {"200": {description: ok}}}
          /metrics:
            get: {summary: Prometheus text, responses: {"200": {description: metrics}}}
          /openapi.yaml:
            get: {summary: this document, responses: {"200": {description: OpenAPI 3.1}}}
          /recordings:
            get:
              summary: a page of recordings, in start order
              security: [{bearer: []}]
              parameters:
                - {name: from, in: query, schema: {type: string}, description: ISO-8601 instant or YYYY-MM-DD in CALLREC_TZ}
                - {name: to, in: query, schema: {type: string}, description: exclusive}
                - {name: company, in: query, schema: {type: string}}
                - {name: agent, in: query, schema: {type: string}}
                - {name: lead_number, in: query, schema: {type: string}}
                - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 1000, default: 100}}
                - {name: cursor, in: query, schema: {type: string}}
              responses:
                "200": {description: a page, content: {application/json: {schema: {$ref: '#/components/schemas/Page'}}}}
                "400": {$ref: '#/components/responses/Error'}
                "401": {$ref: '#/components/responses/Error'}
          /recordings/{file}:
            parameters: [{$ref: '#/components/parameters/file'}]
            get:
              summary: "<uniqueid>.opus: Ogg Opus; <uniqueid>.wav: 16-bit PCM WAV; <uniqueid>: the recording's JSON"
              description: Audio honours Range (bytes=a-b, a-, -n; several ranges as multipart/byteranges), If-Range, If-None-Match, If-Modified-Since, If-Match, If-Unmodified-Since.
              security: [{bearer: []}, {signedURL: []}]
              parameters:
                - {name: Range, in: header, schema: {type: string}}
              responses:
                "200": {description: the audio or the JSON, content: {audio/ogg: {}, audio/wav: {}, application/json: {schema: {$ref: '#/components/schemas/Recording'}}}}
                "206": {description: a range}
                "304": {description: not modified}
                "400": {$ref: '#/components/responses/Error'}
                "401": {$ref: '#/components/responses/Error'}
                "404": {$ref: '#/components/responses/Error'}
                "412": {description: precondition failed}
                "416": {$ref: '#/components/responses/Error'}
            head:
              summary: the same headers as GET, no body
              security: [{bearer: []}, {signedURL: []}]
              responses: {"200": {description: headers}, "206": {description: headers}, "404": {description: not found}}
            delete:
              summary: delete a recording now (admin); 409 under legal hold
              security: [{bearer: []}]
              responses:
                "204": {description: deleted}
                "403": {$ref: '#/components/responses/Error'}
                "404": {$ref: '#/components/responses/Error'}
                "409": {$ref: '#/components/responses/Error'}
          /recordings/{id}/waveform.json:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            get:
              summary: waveform peaks (BBC audiowaveform JSON v2, 8-bit)
              security: [{bearer: []}, {signedURL: []}]
              responses: {"200": {description: peaks}, "304": {description: not modified}, "404": {$ref: '#/components/responses/Error'}}
          /recordings/{id}/metadata:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            put:
              summary: set company, agent, lead number (admin); may come before the audio
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {$ref: '#/components/schemas/Metadata'}}}}
              responses: {"200": {description: the merged metadata, content: {application/json: {schema: {$ref: '#/components/schemas/Metadata'}}}}, "400": {$ref: '#/components/responses/Error'}, "403": {$ref: '#/components/responses/Error'}}
          /recordings/{id}/hold:
            parameters: [{$ref: '#/components/parameters/uniqueid'}]
            put:
              summary: put under legal hold (compliance, admin)
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {type: object, required: [reason], properties: {reason: {type: string}}}}}}
              responses: {"200": {description: the recording, content: {application/json: {schema: {$ref: '#/components/schemas/Recording'}}}}, "400": {$ref: '#/components/responses/Error'}, "403": {$ref: '#/components/responses/Error'}, "404": {$ref: '#/components/responses/Error'}}
            delete:
              summary: release a legal hold (compliance, admin)
              security: [{bearer: []}]
              responses: {"200": {description: the recording}, "403": {$ref: '#/components/responses/Error'}, "404": {$ref: '#/components/responses/Error'}}
          /exports:
            post:
              summary: start a compliance export of a time range (compliance, admin); 202 with the job
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {type: object, required: [from, to], properties: {from: {type: string}, to: {type: string}, company: {type: string}}}}}}
              responses: {"202": {description: the job}, "400": {$ref: '#/components/responses/Error'}, "403": {$ref: '#/components/responses/Error'}}
          /exports/{id}:
            parameters: [{name: id, in: path, required: true, schema: {type: string}}]
            get:
              summary: the job's status and progress
              security: [{bearer: []}]
              responses: {"200": {description: the job}, "404": {$ref: '#/components/responses/Error'}}
          /exports/{id}/download:
            parameters: [{name: id, in: path, required: true, schema: {type: string}}]
            get:
              summary: the ZIP, with Range so a broken download resumes
              security: [{bearer: []}, {signedURL: []}]
              responses: {"200": {description: application/zip}, "206": {description: a range}, "404": {$ref: '#/components/responses/Error'}, "409": {$ref: '#/components/responses/Error'}, "410": {$ref: '#/components/responses/Error'}}
          /holds:
            post:
              summary: legal hold by query (company, lead_number, from, to; at least one) with a reason (compliance, admin)
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {type: object, required: [reason]}}}}
              responses: {"200": {description: "{held: [uniqueid]}"}, "400": {$ref: '#/components/responses/Error'}, "403": {$ref: '#/components/responses/Error'}}
          /erasures:
            post:
              summary: LGPD erasure of a phone number (admin); held recordings are kept and reported
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {type: object, required: [lead_number], properties: {lead_number: {type: string}}}}}}
              responses: {"200": {description: "{count, audio_seconds, bytes, uniqueids, held}"}, "400": {$ref: '#/components/responses/Error'}, "403": {$ref: '#/components/responses/Error'}}
          /retention:
            get:
              summary: per-company retention overrides, in days (compliance, admin)
              security: [{bearer: []}]
              responses: {"200": {description: "{company: days}"}}
          /retention/{company}:
            parameters: [{name: company, in: path, required: true, schema: {type: string}}]
            put:
              summary: set a company's retention in days (admin)
              security: [{bearer: []}]
              requestBody: {required: true, content: {application/json: {schema: {type: object, required: [days], properties: {days: {type: integer}}}}}}
              responses: {"200": {description: the overrides}, "400": {$ref: '#/components/responses/Error'}, "403": {$ref: '#/components/responses/Error'}}
            delete:
              summary: back to CALLREC_RETENTION_DAYS (admin)
              security: [{bearer: []}]
              responses: {"200": {description: the overrides}}
        """#
}

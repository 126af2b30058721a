# callrec: a release build on the Swift image, run on a slim Debian with only the shared
# libraries it needs, as a non-root user.
FROM swift:6.3-bookworm AS build
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libsndfile1-dev libopus-dev libogg-dev libopusfile-dev libsamplerate0-dev libsqlite3-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Package.swift ./
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --product callrec --static-swift-stdlib \
    && install -D .build/release/callrec /out/callrec

FROM debian:bookworm-slim
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libsndfile1 libopus0 libogg0 libopusfile0 libsamplerate0 libsqlite3-0 ca-certificates curl tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 callrec \
    && useradd --system --uid 10001 --gid 10001 --home /var/lib/callrec callrec \
    && mkdir -p /var/lib/callrec /var/spool/asterisk/monitor \
    && chown callrec:callrec /var/lib/callrec /var/spool/asterisk/monitor && chmod 0750 /var/lib/callrec
COPY --from=build /out/callrec /usr/local/bin/callrec
USER callrec
ENV CALLREC_DATA=/var/lib/callrec CALLREC_SPOOL=/var/spool/asterisk/monitor CALLREC_HOST=0.0.0.0 CALLREC_PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --retries=3 CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["/usr/local/bin/callrec"]
CMD ["serve"]

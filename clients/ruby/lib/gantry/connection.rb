# frozen_string_literal: true

require "json"
require "openssl"
require "socket"

module Gantry
  # One connection to a broker (TCP, or TLS over it when `tls` is a Gantry::TLS), pipelined: any number of
  # threads may have requests in flight; a reader thread hands each response to the request with its id, in
  # whatever order they come. Lines from the broker that are notifications (`method`, no `id`) go to
  # `on_notification` (the whole message, a Hash); anything else no request waits for (an answer with
  # `"id": null`, a batch's array, a line that is not JSON, answers to lines sent with #write_line) goes to
  # `on_unmatched`, the raw hook. `on_close` gets the reason.
  #
  # Gantry::Client wraps it with `hello`, reconnection and resends; use this class directly only to speak the
  # protocol line by line (the conformance tests do).
  class Connection
    OUTCOME_UNKNOWN = "; the outcome of the request is unknown"

    attr_reader :host, :port

    # tls:: a Gantry::TLS for a TLS connection (the handshake counts in connect_timeout), nil for plain TCP.
    def initialize(host, port, connect_timeout: 5, tls: nil, on_notification: nil, on_unmatched: nil, on_close: nil)
      @host = host
      @port = port
      @on_notification = on_notification
      @on_unmatched = on_unmatched
      @on_close = on_close
      @mutex = Mutex.new
      @write_mutex = Mutex.new
      @pending = {}
      @next_id = 0
      @closed = false
      @close_reason = nil
      @tls = tls
      @tcp = begin
        Socket.tcp(host, port, connect_timeout: connect_timeout)
      rescue SystemCallError, SocketError, IOError => e
        raise ConnectionError, "cannot connect to the broker at #{host}:#{port}: #{e.message}"
      end
      @tcp.setsockopt(Socket::IPPROTO_TCP, Socket::TCP_NODELAY, 1)
      @tcp.binmode
      @socket = tls ? tls.connect(@tcp, host, port, connect_timeout) : @tcp
      @reader = Thread.new { read_loop }
      @reader.name = "gantry-reader #{host}:#{port}"
      @reader.report_on_exception = false
    end

    # Sends a request with an id of this connection's own and returns its response: the whole envelope, a Hash
    # with "result" or "error". Raises ConnectionError if the connection closes first, TimeoutError after
    # `timeout` seconds (when given).
    def request(method, params = nil, timeout: nil)
      waiter = Waiter.new
      id = @mutex.synchronize do
        raise ConnectionError, @close_reason if @closed

        @pending[@next_id += 1] = waiter
        @next_id
      end
      message = { "jsonrpc" => "2.0", "id" => id, "method" => method }
      message["params"] = params unless params.nil?
      begin
        write_line(JSON.generate(message))
        waiter.wait(timeout)
      rescue Exception # rubocop:disable Lint/RescueException -- forget the id whatever interrupted us
        @mutex.synchronize { @pending.delete(id) }
        raise
      end
    end

    # Sends a request without an id: the broker runs it and never answers.
    def notify(method, params = nil)
      message = { "jsonrpc" => "2.0", "method" => method }
      message["params"] = params unless params.nil?
      write_line(JSON.generate(message))
    end

    # Writes one line as given (a "\n" is added): the raw hook for conformance tests and odd requests.
    def write_line(line)
      raise ConnectionError, @close_reason if @closed

      @write_mutex.synchronize { @socket.write(line, "\n") }
      nil
    rescue IOError, SystemCallError, OpenSSL::SSL::SSLError => e
      # With TLS the broker may have said why (an alert: with TLS 1.3 it refuses our certificate, or its
      # absence, after the handshake): the reader, which sees it, has the better reason. It ends soon after.
      if @tls && Thread.current != @reader && reader_ended?(1)
        raise(@tls_failed ? TLSError : ConnectionError, @close_reason)
      end

      # The broker went away (or closed on us). Take no new requests; the reader still delivers whatever the
      # broker sent before it closed, then fails what is left.
      @mutex.synchronize do
        @closed = true
        @close_reason ||= "the connection to #{host}:#{port} failed: #{e.message}"
      end
      @tcp.close_write rescue nil # rubocop:disable Style/RescueModifier
      raise ConnectionError, @close_reason
    end

    def closed?
      @closed
    end

    # Why the connection closed (nil while open).
    def close_reason
      @close_reason if @closed
    end

    def close
      @mutex.synchronize do
        @closed = true
        @close_reason ||= "the client closed the connection"
      end
      @socket.close rescue nil # rubocop:disable Style/RescueModifier
      @reader.join(2) unless Thread.current == @reader
      nil
    end

    private

    def read_loop
      reason = "the broker at #{host}:#{port} closed the connection"
      while (line = @socket.gets)
        next if line.strip.empty?

        begin
          value = JSON.parse(line.force_encoding(Encoding::UTF_8))
        rescue JSON::ParserError
          @on_unmatched&.call(line)
          next
        end
        dispatch(value)
      end
    rescue IOError, SystemCallError => e
      reason = "the connection to #{host}:#{port} failed: #{e.message}" unless @closed
    rescue OpenSSL::SSL::SSLError => e
      # With TLS 1.3 the broker checks our certificate (or its absence) after our side of the handshake is
      # done: its refusal arrives here, as the answer to hello.
      unless @closed || e.message.match?(/unexpected eof/i) # closed without close_notify: just closed
        error = @tls.error(e, host, port)
        @tls_failed = error.is_a?(TLSError)
        reason = error.message
      end
    ensure
      finish(reason)
    end

    def reader_ended?(timeout)
      !@reader.join(timeout).nil?
    rescue StandardError
      true
    end

    def dispatch(value)
      if value.is_a?(Hash) && value.key?("id")
        waiter = @mutex.synchronize { @pending.delete(value["id"]) }
        return waiter.fulfill(value) if waiter

        # An answer with id null to no request of ours: remember it, it may say why the broker closes.
        @broker_said = value.dig("error", "message") if value["id"].nil? && value["error"].is_a?(Hash)
      elsif value.is_a?(Hash) && value["method"].is_a?(String)
        begin
          @on_notification&.call(value)
        rescue StandardError => e
          warn "gantry: the notification callback raised #{e.class}: #{e.message}"
        end
        return
      end
      @on_unmatched&.call(value)
    end

    def finish(reason)
      waiters = @mutex.synchronize do
        @closed = true
        @close_reason ||= reason
        @close_reason += " (the broker said: #{@broker_said})" if @broker_said
        @pending.values.tap { @pending.clear }
      end
      @socket.close rescue nil # rubocop:disable Style/RescueModifier
      message = "#{@close_reason}#{OUTCOME_UNKNOWN}"
      waiters.each do |waiter|
        waiter.fulfill(@tls_failed ? TLSError.new(@close_reason) : ConnectionError.new(message))
      end
      @on_close&.call(@close_reason)
    end

    # One request's answer, waited for by its caller.
    class Waiter
      def initialize
        @mutex = Mutex.new
        @ready = ConditionVariable.new
        @done = false
      end

      def fulfill(value)
        @mutex.synchronize do
          next if @done

          @value = value
          @done = true
          @ready.broadcast
        end
      end

      def wait(timeout)
        deadline = timeout && Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout
        @mutex.synchronize do
          until @done
            if deadline
              left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
              raise TimeoutError, "no answer from the broker within #{timeout} s" if left <= 0

              @ready.wait(@mutex, left)
            else
              @ready.wait(@mutex)
            end
          end
        end
        raise @value if @value.is_a?(Exception)

        @value
      end
    end
    private_constant :Waiter
  end
end

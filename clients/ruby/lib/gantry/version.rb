# frozen_string_literal: true

module Gantry
  VERSION = "0.1.0"
  PROTOCOL = 1
end
